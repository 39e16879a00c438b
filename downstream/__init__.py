"""Data sets and degradations, quality metrics, detection and segmentation tasks."""
