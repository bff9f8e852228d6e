"""Plain-language descriptions of a Keras model's layers, for `digitlab models`."""

from __future__ import annotations


def describe_layer(layer) -> str:
    """One short line per layer, e.g. "Dense 512 relu", "Conv2D 32 3x3 relu", "Dropout 0.2"."""
    kind = type(layer).__name__
    cfg = layer.get_config()
    activation = cfg.get("activation")
    act = f" {activation}" if activation and activation != "linear" else ""
    if kind == "Dense":
        return f"Dense {cfg['units']}{act}"
    if kind == "Conv2D":
        k = "x".join(map(str, cfg["kernel_size"]))
        return f"Conv2D {cfg['filters']} {k}{act}"
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return f"{kind.replace('ing2D', '')} {'x'.join(map(str, cfg['pool_size']))}"
    if kind == "Dropout":
        return f"Dropout {cfg['rate']}"
    return kind


def describe_model(model) -> list[tuple[str, str, int]]:
    """(description, output shape, parameter count) for each layer, input first."""
    rows = [("Input", "x".join(str(d) for d in model.input_shape[1:]), 0)]
    for layer in model.layers:
        shape = "x".join(str(d) for d in layer.output.shape[1:])
        rows.append((describe_layer(layer), shape, int(layer.count_params())))
    return rows
