"""Synthetic spine radiograph phantom in the VinDr-SpineXR release layout.

``generate_phantom(out, num_train, num_test, seed)`` writes ``annotations/{train,test}.csv`` and
``{train,test}_images/<image_id>.dicom`` exactly as the real release is laid out; see
``docs/phantom.md``. It is a stand-in for tests and demos: numbers measured on it say nothing about
performance on real radiographs.
"""
from .generator import ImagePlan, PhantomImage, generate_phantom, plan_split, render_phantom_image

__all__ = ['ImagePlan', 'PhantomImage', 'generate_phantom', 'plan_split', 'render_phantom_image']
