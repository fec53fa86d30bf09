"""The local model's ceiling: the same graph on ONNX Runtime's own Python API.

    reference_model.py --inputs FILE --model-dir DIR --threads N

Embeds FILE's texts (a JSON array of strings) as the worker does — truncated at 256
tokens, in order of token count, 8 a pass, padded to each pass's longest — with
ONNX Runtime's default session options but the threads. Prints one JSON line.
"""

import argparse
import json
import os
import time

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

BATCH = 8


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inputs", required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    with open(args.inputs) as f:
        inputs = json.load(f)
    tokenizer = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(os.path.join(args.model_dir, "model.onnx"), options,
                                           providers=["CPUExecutionProvider"])

    def embed(texts):
        encodings = tokenizer.encode_batch(texts)
        feed = {"input_ids": np.array([e.ids for e in encodings], np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], np.int64)}
        return session.run(None, feed)[0]

    embed(inputs[:1])  # first-use allocations, untimed
    start = time.perf_counter()
    order = sorted(range(len(inputs)), key=lambda i: len(tokenizer.encode(inputs[i]).ids))
    for b in range(0, len(order), BATCH):
        embed([inputs[i] for i in order[b:b + BATCH]])
    seconds = time.perf_counter() - start
    print(json.dumps({"ceiling": "reference_model", "runtime": f"onnxruntime {onnxruntime.__version__}",
                      "chunks": len(inputs), "threads": args.threads, "batch": BATCH,
                      "seconds": seconds, "per_second": len(inputs) / seconds}))


if __name__ == "__main__":
    main()
