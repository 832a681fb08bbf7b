#!/usr/bin/python3
# Writes the named seeds of corpus/safetensors/ (standard library only):
# valid files of every dtype, empty and scalar tensors, metadata, and one
# file per refusal of storage/safetensors.c. Run from tests/fuzz/.
# Inputs found by fuzzing (min_*, crash_*) are added beside them by hand.
import json
import os
import struct

OUT = "corpus/safetensors"


def st(header, data=b"", raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


def ent(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


seeds = {}
# valid
seeds["ok_f32_2d.st"] = st({"w": ent("F32", [2, 3], 0, 24)}, struct.pack("<6f", 1, -2, 0.5, 3, 0, 7))
seeds["ok_all_dtypes.st"] = st(
    {
        "__metadata__": {"format": "pt"},
        "a": ent("F16", [2], 0, 4), "b": ent("BF16", [2], 4, 8), "c": ent("F8_E4M3", [2], 8, 10),
        "d": ent("F8_E5M2", [2], 10, 12), "e": ent("F64", [1], 12, 20), "f": ent("I8", [2], 20, 22),
        "g": ent("U8", [2], 22, 24), "h": ent("I16", [1], 24, 26), "i": ent("U16", [1], 26, 28),
        "j": ent("I32", [1], 28, 32), "k": ent("U32", [1], 32, 36), "l": ent("I64", [1], 36, 44),
        "m": ent("U64", [1], 44, 52), "n": ent("BOOL", [2], 52, 54),
    },
    bytes(range(1, 55)))
seeds["ok_empty_scalar_padded.st"] = st(
    None, struct.pack("<f", 2.0),
    raw_header=b'{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},'
               b'"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}      ')
seeds["ok_no_tensors.st"] = st(None, raw_header=b"{}      ")
seeds["ok_3d_nan.st"] = st({"t": ent("F16", [2, 1, 2], 0, 8)}, struct.pack("<4H", 0x3C00, 0x7E00, 0xFC00, 0))
seeds["ok_offset_order.st"] = st({"z": ent("F32", [1], 0, 4), "a": ent("F32", [1], 4, 8)}, b"\0" * 8)
# refused
seeds["bad_short.st"] = b"\x10\0\0"
seeds["bad_len_past_end.st"] = struct.pack("<Q", 64) + b"{}"
seeds["bad_len_huge.st"] = struct.pack("<Q", 1 << 40) + b"{}"
seeds["bad_not_brace.st"] = st(None, raw_header=b" []")
seeds["bad_json.st"] = st(None, raw_header=b'{"w":{"dtype":"F32",')
seeds["bad_unknown_dtype.st"] = st({"w": ent("F4", [2], 0, 1)}, b"\0")
seeds["bad_size_mismatch.st"] = st({"w": ent("F32", [4, 8], 0, 96)}, b"\0" * 96)
seeds["bad_overlap.st"] = st({"a": ent("F32", [2], 0, 8), "b": ent("F32", [1], 4, 8)}, b"\0" * 8)
seeds["bad_hole.st"] = st({"a": ent("F32", [1], 0, 4), "b": ent("F32", [1], 8, 12)}, b"\0" * 12)
seeds["bad_trailing.st"] = st({"a": ent("F32", [1], 0, 4)}, b"\0" * 7)
seeds["bad_offsets_type.st"] = st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, -4]}}, b"\0" * 4)
seeds["bad_shape_neg_overflow.st"] = st({"a": ent("F32", [-1], 0, 4), "b": ent("U8", [1 << 32, 1 << 32], 4, 4)},
                                        b"\0" * 4)
seeds["bad_duplicate.st"] = st(None, b"\0" * 8, raw_header=b'{"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
                                                          b'"w":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}')
seeds["bad_metadata.st"] = st({"__metadata__": {"a": "b", "n": 3}})
seeds["bad_field.st"] = st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, b"\0" * 4)
os.makedirs(OUT, exist_ok=True)
for name, b in seeds.items():
    assert len(b) < 4096
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b)
