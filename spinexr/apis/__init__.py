from .inference import (BatchInferencer, PreprocessSpec, build_classifier,  # noqa: F401
                        build_detector, collect_inputs, read_image, run_inference)
