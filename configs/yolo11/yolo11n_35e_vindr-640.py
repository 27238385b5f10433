# YOLO11-n with the YOLO11-l recipe (configs/yolo11/yolo11l_35e_vindr-640.py).
_base_ = './yolo11l_35e_vindr-640.py'

model = dict(model_yaml='yolo11n.yaml')
