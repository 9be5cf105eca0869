"""Load face stimuli: the built-in synthetic KDEF, or your own KDEF copy, and look at them.

    python examples/01_load_stimuli.py            # synthetic faces, no files needed
    KDEF_ROOT=/data/KDEF python examples/01_load_stimuli.py
"""

import os

from facebrain.stimuli import contact_sheet, load_kdef, synthetic_kdef

root = os.environ.get("KDEF_ROOT")
if root:
    faces = load_kdef(root, views=["S"])  # frontal views only; bad files land in .rejected
    print(f"rejected files: {len(faces.rejected)}")
else:
    faces = synthetic_kdef(seed=0, image_size=64)  # 70 identities x 7 expressions x 5 views x 2

print(faces)
print(faces.table[["identity", "expression", "view"]].head())

frontal = faces.subset("view == 'S' and session == 'A'") if "session" in faces.table else faces
codes, names = frontal.labels("expression")
print(f"{len(frontal)} frontal images; expressions: {names}")

contact_sheet(frontal, rows="identity", cols="expression", max_rows=6, path="faces.png")
print("wrote faces.png")
