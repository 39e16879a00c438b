"""Downstream segmentation: SegFormer (MiT backbone + all-MLP head) on SR outputs.

* ``task.SegmentationTask`` -- the runner's task (configs/tasks/segmentation_*.yaml): IoU per class,
  mIoU and aAcc rows (percent). FMB's id 0 ``unlabeled`` is ignored in the metric by default
  (``ignore_classes: [unlabeled]``): no IoU row for it, mIoU over the 14 other classes.
* ``metrics`` -- confusion matrix -> IoU / mIoU / aAcc, equal to mmseg's ``IoUMetric``.
* ``model`` -- SegFormer variants built through mmseg's registry; plain-state-dict weights I/O.
* ``train`` -- ``python -m downstream.segmentation.train --config <name or yaml>``.
* ``prepare`` -- ``python -m downstream.segmentation.prepare fmb --src <download> --out <root>``.
* ``figure`` -- predicted masks overlaid on SR crops (the paper's Figure 5).
* ``mmcv_shim`` -- lets mmseg import on mmcv-lite (no compiled ops).

Importing this package does not import mmseg; the modules that need it install the shim first.
"""
