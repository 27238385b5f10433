"""spinexr: spine radiograph lesion detection and classification on MMEngine/MMDetection/MMPretrain."""
from pathlib import Path

from setuptools import find_packages, setup


def _requirements(name: str) -> list:
    lines = (Path(__file__).parent / 'requirements' / name).read_text().splitlines()
    return [ln.split('#')[0].strip() for ln in lines if ln.split('#')[0].strip()]


setup(
    name='spinexr',
    version='0.1.0',
    description='Spine X-ray lesion detection and classification (VinDr-SpineXR) '
    'as plugins for MMEngine, MMDetection, MMPretrain and Ultralytics YOLO11.',
    long_description=(Path(__file__).parent / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['spinexr', 'spinexr.*']),
    install_requires=[r for r in _requirements('runtime.txt') if not r.startswith('torch')],
    extras_require={'tests': _requirements('tests.txt')},
    # The shipped configs travel inside the package (spinexr/.mim/configs, a link to configs/ in
    # a checkout: the build copies the files), as mmdet ships its own.
    package_data={'spinexr': ['.mim/configs/**/*.py']},
    include_package_data=True,
    zip_safe=False,
)
