#!/usr/bin/env python3
"""bench/gguf_tokenizer.py MODEL.gguf TOKENIZER.gguf OUT.gguf — MODEL with the
tokenizer.* metadata of TOKENIZER added (GGUF v3, standard library only).

`ifp synth` writes models without a tokenizer, and ifp-router needs one to
start (it tokenizes prompts and turns sampled ids into text).  The benchmarks
that run a synthetic paper-shape model behind the real router give it the
ifp-mix tokenizer this way: synthesize with --vocab equal to the tokenizer's
vocabulary (2048 for ifp-mix), then add its tokenizer.  Keys MODEL already has
are kept; tensor infos and data are copied unchanged (tensor offsets are
relative to the data section, which is re-aligned)."""
import shutil
import struct
import sys

# GGUF value types: fixed sizes; 8 = string, 9 = array
FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY, UINT32 = 8, 9, 4


def skip_value(f, vtype):
    if vtype in FIXED:
        f.seek(FIXED[vtype], 1)
    elif vtype == STRING:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(n, 1)
    elif vtype == ARRAY:
        etype, n = struct.unpack("<IQ", f.read(12))
        if etype in FIXED:
            f.seek(FIXED[etype] * n, 1)
        else:
            for _ in range(n):
                skip_value(f, etype)
    else:
        raise ValueError(f"unknown GGUF value type {vtype}")


def read_header(f, path):
    magic, version, n_tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
    if magic != b"GGUF" or version != 3:
        sys.exit(f"{path}: not a GGUF v3 file")
    kvs = []  # (key, raw bytes of the whole entry)
    alignment = 32
    for _ in range(n_kv):
        start = f.tell()
        (klen,) = struct.unpack("<Q", f.read(8))
        key = f.read(klen).decode()
        (vtype,) = struct.unpack("<I", f.read(4))
        vstart = f.tell()
        skip_value(f, vtype)
        end = f.tell()
        if key == "general.alignment" and vtype == UINT32:
            f.seek(vstart)
            (alignment,) = struct.unpack("<I", f.read(4))
            f.seek(end)
        f.seek(start)
        kvs.append((key, f.read(end - start)))
    return n_tensors, kvs, alignment


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[0])
    model, tok, out = sys.argv[1:]
    with open(tok, "rb") as f:
        _, tok_kvs, _ = read_header(f, tok)
    with open(model, "rb") as f, open(out, "wb") as o:
        n_tensors, kvs, alignment = read_header(f, model)
        have = {k for k, _ in kvs}
        added = [(k, raw) for k, raw in tok_kvs if k.startswith("tokenizer.") and k not in have]
        if not any(k == "tokenizer.ggml.tokens" for k, _ in added + kvs):
            sys.exit(f"{tok}: no tokenizer.ggml.tokens")
        infos_start = f.tell()
        for _ in range(n_tensors):
            (nlen,) = struct.unpack("<Q", f.read(8))
            f.seek(nlen, 1)
            (n_dims,) = struct.unpack("<I", f.read(4))
            f.seek(8 * n_dims + 4 + 8, 1)
        infos_end = f.tell()
        data_start = (infos_end + alignment - 1) // alignment * alignment
        o.write(struct.pack("<4sIQQ", b"GGUF", 3, n_tensors, len(kvs) + len(added)))
        for _, raw in kvs + added:
            o.write(raw)
        f.seek(infos_start)
        o.write(f.read(infos_end - infos_start))
        o.write(b"\0" * (-o.tell() % alignment))
        f.seek(data_start)
        shutil.copyfileobj(f, o, 16 << 20)
    print(f"{out}: {model} + {len(added)} tokenizer keys of {tok}", file=sys.stderr)


if __name__ == "__main__":
    main()
