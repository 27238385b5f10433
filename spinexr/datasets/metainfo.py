"""Constants of the VinDr-SpineXR release: class names, CSV columns, palette.

Spellings follow the release's CSV exactly (note ``Spondylolysthesis``, with a y), and the class
order is the one used by the official code.
"""

#: Lesion classes in the official order, spelled exactly as in the CSV.
CLASSES = (
    'Osteophytes',
    'Surgical implant',
    'Spondylolysthesis',
    'Foraminal stenosis',
    'Disc space narrowing',
    'Vertebral collapse',
    'Other lesions',
)

#: ``lesion_type`` of the single row that marks an image without lesions.
NO_FINDING = 'No finding'

#: Columns of ``annotations/{train,test}.csv``, in order.
CSV_COLUMNS = ('study_id', 'series_id', 'image_id', 'rad_id', 'lesion_type', 'xmin', 'ymin',
               'xmax', 'ymax')

#: One RGB colour per class (visualisation).
PALETTE = [(220, 20, 60), (0, 130, 200), (255, 165, 0), (60, 180, 75), (145, 30, 180),
           (240, 50, 230), (128, 128, 0)]

#: Image-level classes of the abnormality classifier (index = label).
CLS_CLASSES = ('normal', 'abnormal')

#: ``metainfo`` of the detection dataset.
DET_METAINFO = dict(classes=CLASSES, palette=PALETTE)
