"""Object detection on SR outputs: YOLOv5-s (ultralytics, anchor-free "v5u" head) on M3FD and the synthir demo.

Modules: ``offline`` (ultralytics with no network), ``yolo`` (build / save / load / train / validate),
``metrics`` (mAP from predictions; pycocotools cross-check), ``data`` (YOLO-format folders), ``task``
(:class:`DetectionTask`, the runner's ``detection`` task), ``train`` and ``prepare`` (command lines), ``figure``
(detections drawn on SR crops). Importing this package does not import ultralytics.
"""
