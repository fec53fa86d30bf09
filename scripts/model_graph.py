"""Writes the ONNX graph ai_loader's local model runs, from the model's own files.

    model_graph.py MODEL_DIR [OUT]      (OUT defaults to MODEL_DIR/model.onnx)

A BERT encoder as config.json describes it, its weights taken from model.safetensors in
float32 as they are, followed by sentence-transformers' mean pooling over the attention
mask and L2 normalisation. Inputs `input_ids` and `attention_mask` (int64, batch ×
tokens); output `sentence_embedding` (float32, batch × hidden size). Plain ONNX
operators (opset 17), which ONNX Runtime fuses when it loads the graph.
"""

import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file


class Graph:
    def __init__(self, weights):
        self.weights = weights
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, value, hint="const"):
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, key, transpose=False):
        value = self.weights[key].astype(np.float32)
        return self.constant(value.T.copy() if transpose else value, key)

    def op(self, kind, *inputs, **attrs):
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def linear(self, x, prefix):
        product = self.op("MatMul", x, self.weight(f"{prefix}.weight", transpose=True))
        return self.op("Add", product, self.weight(f"{prefix}.bias"))

    def layer_norm(self, x, prefix, eps):
        return self.op("LayerNormalization", x, self.weight(f"{prefix}.weight"),
                       self.weight(f"{prefix}.bias"), axis=-1, epsilon=eps)


def encoder(g, config, ids, mask):
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    size = hidden // heads

    # Embeddings: words + positions 0..n-1 + token type 0.
    tokens = g.op("Shape", ids, start=1, end=2)
    positions = g.op("Slice", g.weight("embeddings.position_embeddings.weight"),
                     g.constant(np.array([0], np.int64)), tokens, g.constant(np.array([0], np.int64)))
    x = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), ids, axis=0)
    x = g.op("Add", x, positions)
    x = g.op("Add", x, g.constant(g.weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32)))
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    # The padding's attention bias: 0 where the mask keeps a token, -10000 elsewhere.
    keep = g.op("Cast", g.op("Unsqueeze", mask, g.constant(np.array([1, 2], np.int64))), to=TensorProto.FLOAT)
    bias = g.op("Mul", g.op("Sub", g.constant(np.float32(1.0)), keep), g.constant(np.float32(-10000.0)))

    split = g.constant(np.array([0, 0, heads, size], np.int64))
    merge = g.constant(np.array([0, 0, hidden], np.int64))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q, k, v = (g.op("Reshape", g.linear(x, f"{p}.attention.self.{n}"), split)
                   for n in ("query", "key", "value"))
        q = g.op("Transpose", q, perm=[0, 2, 1, 3])
        k = g.op("Transpose", k, perm=[0, 2, 3, 1])
        v = g.op("Transpose", v, perm=[0, 2, 1, 3])
        scores = g.op("Div", g.op("MatMul", q, k), g.constant(np.float32(math.sqrt(size))))
        probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
        context = g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3])
        context = g.op("Reshape", context, merge)
        x = g.layer_norm(g.op("Add", g.linear(context, f"{p}.attention.output.dense"), x),
                         f"{p}.attention.output.LayerNorm", eps)
        h = g.linear(x, f"{p}.intermediate.dense")
        # GELU with the exact erf, as BERT defines it.
        h = g.op("Mul", g.op("Mul", h, g.op("Add", g.op("Erf", g.op("Div", h, g.constant(np.float32(math.sqrt(2.0))))),
                                            g.constant(np.float32(1.0)))),
                 g.constant(np.float32(0.5)))
        x = g.layer_norm(g.op("Add", g.linear(h, f"{p}.output.dense"), x), f"{p}.output.LayerNorm", eps)
    return x


def pooled(g, x, mask):
    """Mean over the tokens the mask keeps, then unit length (as sentence-transformers)."""
    keep = g.op("Cast", g.op("Unsqueeze", mask, g.constant(np.array([2], np.int64))), to=TensorProto.FLOAT)
    summed = g.op("ReduceSum", g.op("Mul", x, keep), g.constant(np.array([1], np.int64)), keepdims=0)
    counts = g.op("Max", g.op("ReduceSum", keep, g.constant(np.array([1], np.int64)), keepdims=0),
                  g.constant(np.float32(1e-9)))
    mean = g.op("Div", summed, counts)
    norm = g.op("Max", g.op("ReduceL2", mean, axes=[1], keepdims=1),
                g.constant(np.float32(1e-12)))
    return g.op("Div", mean, norm)


def build(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    g = Graph(load_file(os.path.join(model_dir, "model.safetensors")))
    out = pooled(g, encoder(g, config, "input_ids", "attention_mask"), "attention_mask")
    g.nodes.append(helper.make_node("Identity", [out], ["sentence_embedding"]))
    graph = helper.make_graph(
        g.nodes, "sentence_embedding",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"])
         for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", config["hidden_size"]])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="ai_loader model_graph.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    model_dir = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(model_dir, "model.onnx")
    model = build(model_dir)
    onnx.save(model, out + ".part")
    os.replace(out + ".part", out)


if __name__ == "__main__":
    main()
