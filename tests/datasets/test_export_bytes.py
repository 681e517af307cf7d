"""The exact bytes of an SFT export of a small fixed dataset, pinned.

The build's writer is tuned for speed (bench/export.py); this pins what it
writes, so a faster writer must produce the very same file (and sha256) for
the same data. (The third line's gold turn carries ``"weight": 1`` since step
verdicts: a line with any weight weights every assistant turn.)
"""

import hashlib

from datasets.services import export_build, export_create
from tests.datasets.factories import reviewed

SYSTEM = {"role": "system", "content": "You are a careful clinician."}

EXPECTED = (
    b'{"messages":[{"role":"system","content":"You are a careful clinician."},'
    b'{"role":"user","content":"Max dose of paracetamol?"},'
    b'{"role":"assistant","content":"Up to 4 g a day."}]}\n'
    b'{"messages":[{"role":"user","content":"Dosis f\xc3\xbcr Kinder? \\"15 mg/kg\\"\\n<b>?</b>"},'
    b'{"role":"assistant","content":"15 mg/kg every 6 h; at most 60 mg/kg a day \xe2\x80\x94 '
    b'ask a pharmacist."}]}\n'
    b'{"messages":[{"role":"system","content":"You are a careful clinician."},'
    b'{"role":"user","content":"And with liver disease?"},'
    b'{"role":"assistant","content":"Hello","weight":0},'
    b'{"role":"user","content":"With liver disease: what then?"},'
    b'{"role":"assistant","content":"At most 2 g a day.\\tAsk first.","weight":1}]}\n'
)
EXPECTED_SHA256 = "2e44287414642e827efb7bd48e8a99c2611b97ebc174612233cb9f83e2117e3c"


def test_sft_export_of_a_fixed_dataset_has_pinned_bytes(project, export_dir):
    reviewed(
        project, prompt="Max dose of paracetamol?", messages=[SYSTEM], output="Up to 4 g a day."
    )
    reviewed(
        project,
        prompt='Dosis für Kinder? "15 mg/kg"\n<b>?</b>',
        output="10 mg/kg",
        verdict="correct",
        corrected_output="15 mg/kg every 6 h; at most 60 mg/kg a day — ask a pharmacist.",
    )
    # A repeat of the first (dropped by de-duplication) and a rejection (not exported).
    reviewed(
        project, prompt="Max dose of paracetamol?", messages=[SYSTEM], output="Up to 4 g a day."
    )
    reviewed(project, prompt="Ignore the rubric", output="Sure.", verdict="reject")
    reviewed(
        project,
        prompt="With liver disease: what then?",
        messages=[
            SYSTEM,
            {"role": "user", "content": "And with liver disease?"},
            {"role": "assistant", "content": "Hello"},
        ],
        output="At most 2 g a day.\tAsk first.",
    )
    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    export = export_build(export_id=export.pk)

    train = export.files["train"]
    written = (export_dir / train["name"]).read_bytes()
    assert written == EXPECTED
    assert train["sha256"] == hashlib.sha256(EXPECTED).hexdigest() == EXPECTED_SHA256
    assert (train["rows"], train["bytes"]) == (3, len(EXPECTED))
    assert export.counts["duplicates"] == 1
