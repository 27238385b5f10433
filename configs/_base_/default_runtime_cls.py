# The same plugin settings for classification configs; combine with
# 'mmpretrain::_base_/default_runtime.py' (or a full mmpretrain config) in `_base_`.
_base_ = './default_runtime.py'
