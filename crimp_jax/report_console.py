"""One-screen console summary of a finished run."""

from __future__ import annotations


def print_summary(summary: dict) -> None:
    if summary.get("interrupted"):
        print(f"run interrupted during stage {summary.get('stage')}; rerun to resume")
        return
    dev = summary.get("device", {})
    lines = [
        f"model            {summary['model']} ({summary['num_params']:,} params)",
        f"data             {summary['train_images']} train / {summary['test_images']} test images",
        f"float accuracy   {100 * summary['test_accuracy']:.2f}% after {summary['epochs']} epochs",
        f"time             {summary['wall_s']:.0f} s total, "
        f"{summary['epoch_s_median']:.2f} s/epoch on {dev.get('kind')} ({dev.get('platform')})",
    ]
    print("\n".join(["=" * 60, *lines, "=" * 60]))
