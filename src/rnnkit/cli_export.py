"""``rnnkit export``: a trained run to ONNX graphs with the state as input and output, verified in onnxruntime."""

from __future__ import annotations

from pathlib import Path

import typer

from .cli_common import console, friendly, resolve_input


def register(app: typer.Typer) -> None:
    """Add ``rnnkit export`` to ``app``."""

    @app.command("export")
    @friendly
    def export(
        run: Path = typer.Argument(..., help="run directory made by 'rnnkit train'"),
        format: str = typer.Option("onnx", "--format", help="export format (onnx)"),
        out: Path = typer.Option(None, "--out", help="output directory (default: RUN/onnx)"),
        graphs: str = typer.Option(
            None,
            "--graphs",
            help="comma-separated: sequence, step, head (translate: encoder, decoder_step); default: all the model has",
        ),
        opset: int = typer.Option(18, "--opset", help="ONNX opset, 17 to 21"),
        data: Path = typer.Option(None, "--data", help="forecast: the series whose windows verify the export"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output directory"),
    ) -> None:
        """Export a trained model to ONNX: a step graph (x_t, state) -> (y_t, state) for streaming, the
        whole-sequence graph, translation's encoder and decoder step; then run them in onnxruntime against PyTorch
        (verify.json) and describe inputs, outputs and the state layout (README.txt).

        Example: rnnkit export runs/sales --format onnx --out runs/sales/onnx
        """
        from .export import ExportConfig, export_onnx

        if not run.exists():
            raise ValueError(f"run directory {run} does not exist")
        names = tuple(g.strip() for g in graphs.split(",") if g.strip()) if graphs else None
        cfg = ExportConfig(
            format=format, graphs=names, opset=opset, data=resolve_input(data, "--data"), overwrite=overwrite
        )
        cfg.check()  # a wrong flag fails before the model is loaded
        result = export_onnx(run, out, cfg)
        worst = max((e for per in result.report["max_abs_error"].values() for e in per.values()), default=0.0)
        console.print(
            f"wrote {', '.join(f for f in result.files if f.endswith('.onnx'))} to {result.directory}; "
            f"onnxruntime matches PyTorch to {worst:.1e} (verify.json, README.txt)"
        )
