"""Study ids and study rows of tools/infer.py on hand-made records (no model)."""
import pytest

from spinexr.apis.inference_study import (assign_study_ids, load_study_map,
                                          study_map_from_inputs, study_records)


def _rec(image_id, prob, findings, uid=None):
    return dict(image_id=image_id, abnormal_prob=prob, dicom_study_uid=uid,
                findings=[dict(class_id=c, score=s) for c, s in findings])


def test_release_csv_is_a_study_map_and_conflicts_are_named(tmp_path):
    release = tmp_path / 'test.csv'  # the release's annotation CSV: several rows per image
    release.write_text('study_id,series_id,image_id,rad_id,lesion_type,xmin,ymin,xmax,ymax\n'
                       'S1,x,a,rad1,Osteophytes,1,2,3,4\nS1,x,a,rad1,Osteophytes,5,6,7,8\n'
                       'S1,y,b,rad1,No finding,,,,\n')
    assert load_study_map(str(release)) == {'a': 'S1', 'b': 'S1'}
    release.write_text(release.read_text() + 'S2,z,b,rad1,No finding,,,,\n')
    with pytest.raises(ValueError, match=r'test.csv: row 5: image b is in study S2'):
        load_study_map(str(release))
    bad = tmp_path / 'bad.csv'
    bad.write_text('path,label\nx.png,1\n')
    with pytest.raises(ValueError, match='needs "study_id"'):
        load_study_map(str(bad))
    lst = tmp_path / 'list.csv'
    lst.write_text('path,study_id\nimgs/c.png,S3\n')
    assert study_map_from_inputs([str(lst), str(bad), 'folder/']) == {'c': 'S3'}


def test_study_rows_without_classifier():
    records = [_rec('a', None, [(0, 0.4), (2, 0.9)], uid='U1'),
               _rec('b', None, [(0, 0.7)], uid='U1'),
               _rec('c', None, [(7, 0.3)]),  # a class id beyond the names
               _rec('d', None, [], uid='U2')]  # the map wins over the DICOM uid
    assign_study_ids(records, {'d': 'S-map'})
    assert [(r['study_id'], r['study_id_source']) for r in records] == [
        ('U1', 'dicom'), ('U1', 'dicom'), ('c', 'image'), ('S-map', 'map')]
    rows = study_records(records, ['A', 'B', 'C'], rule='mean')
    assert [r['study_id'] for r in rows] == ['U1', 'c', 'S-map']
    assert rows[0]['abnormal_prob'] is None and rows[0]['n_images'] == 2
    assert rows[0]['class_scores'] == {'A': 0.7, 'B': 0.0, 'C': 0.9, 'class_3': 0.0,
                                       'class_4': 0.0, 'class_5': 0.0, 'class_6': 0.0,
                                       'class_7': 0.0}
    assert rows[1]['class_scores']['class_7'] == 0.3
    assert study_records([], ['A']) == []
