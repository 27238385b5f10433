# Runtime of every spinexr classification config: MMPretrain's default runtime plus spinexr's
# plugin settings (see default_runtime.py for the detection counterpart).
_base_ = 'mmpretrain::_base_/default_runtime.py'

default_scope = 'mmpretrain'
custom_imports = dict(imports=['spinexr'], allow_failed_imports=False)
runner_type = 'SpinexrRunner'
