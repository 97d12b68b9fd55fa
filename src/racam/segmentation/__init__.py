"""racam.segmentation"""
