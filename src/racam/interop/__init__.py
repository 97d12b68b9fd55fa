"""Masks a labelling tool can open, and corrected masks back.

racam's masks are binary PNGs, one per image. ``racam masks export`` turns a folder of them
(``racam predict``'s ``OUT/masks``, a run's pseudo-labels ``fold<k>/pseudo/<key>``, a folder
dataset's ``masks/``) into a COCO instances file (:mod:`racam.interop.coco`: one annotation per
8-connected component, as polygons or RLE) or a folder of LabelMe files
(:mod:`racam.interop.labelme`); ``racam masks import`` rasterizes what a user corrected back
into binary PNGs (:mod:`racam.interop.importer`). Which mask belongs to which image:
:mod:`racam.interop.masks`; mask <-> polygons and RLE: :mod:`racam.interop.shapes`.
"""
