"""A GGUF file (llama.cpp's format) as a local Hugging Face model directory.

transformers reads GGUF through the ``gguf`` package and dequantises every tensor to fp32 (a
quantised file, such as a Q4_1 one, loses nothing more here: its rounded weights are what the
model is). :func:`import_gguf` writes the model as ``model.safetensors`` with its ``config.json``
and the file's tokenizer as ``tokenizer.json``, into a temporary directory renamed into place, so
any sweep can name the result as ``init_from``. Needs ``pip install 'scaling[gguf]'`` (gguf and
accelerate).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from scaling.atomic import file_mode
from scaling.errors import UserError


def import_gguf(gguf_file: str | Path, out: str | Path) -> Path:
    """Convert ``gguf_file`` into the model directory ``out`` (replaced if it exists); returns ``out``.

    UserError, naming the file, when it does not exist, when the gguf package is missing, or when
    transformers cannot read it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file, out = Path(gguf_file).expanduser(), Path(out).expanduser()
    if not gguf_file.is_file():
        raise UserError(f"{str(gguf_file)!r} does not exist; expected a GGUF model file (*.gguf)")
    if importlib.util.find_spec("gguf") is None or importlib.util.find_spec("accelerate") is None:
        raise UserError("reading GGUF files needs the gguf and accelerate packages: pip install 'scaling[gguf]'")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{str(gguf_file)!r}: transformers cannot read this GGUF file ({reason}); "
                        "expected a GGUF causal LM of an architecture transformers knows") from None
    model.hf_quantizer = None  # the tensors are dequantised fp32: save them as such
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    mode = file_mode()
    for written in tmp.rglob("*"):
        if written.is_file():
            written.chmod(mode)  # transformers writes some files owner-only; the store's files follow the umask
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
