"""Demo content for `manage.py seed_demo`: realistic medical, legal and finance outputs."""

import json
import random

MEDICAL = [
    (
        "What is the maximum daily dose of paracetamol for a healthy adult weighing {w} kg?",
        "For a healthy adult of {w} kg the usual maximum is 4 g of paracetamol in 24 hours, "
        "taken as 500 mg to 1 g every 4 to 6 hours. Lower limits apply with liver disease or "
        "regular alcohol use; consult your doctor or pharmacist.",
        "Up to 8 g per day is safe for most adults; take 2 g at a time for faster relief.",
        "Paracetamol: adults 0.5-1 g every 4-6 hours, maximum 4 g in 24 hours.",
    ),
    (
        "Can ibuprofen be taken together with low-dose aspirin prescribed for heart protection?",
        "Ibuprofen can blunt the antiplatelet effect of low-dose aspirin. If both are needed, take "
        "the aspirin at least 30 minutes before ibuprofen, or ask your doctor about alternatives "
        "such as paracetamol for pain.",
        "Yes, there is no interaction between ibuprofen and aspirin.",
        "NSAIDs such as ibuprofen may interfere with the antiplatelet effect of aspirin.",
    ),
    (
        "A patient on warfarin asks whether they can start a course of clarithromycin. ({n})",
        "Clarithromycin inhibits CYP3A4 and can raise the INR in patients on warfarin. Monitor "
        "the INR closely within 3 to 5 days of starting and adjust the warfarin dose if needed.",
        "Clarithromycin lowers the INR, so increase the warfarin dose before starting it.",
        "Macrolide antibiotics (clarithromycin, erythromycin) potentiate warfarin.",
    ),
    (
        "What are the first-line treatments for uncomplicated hypertension in a {age}-year-old?",
        "First-line options are an ACE inhibitor or ARB, a thiazide-like diuretic, or a calcium "
        "channel blocker, chosen by age, ethnicity and comorbidities, with lifestyle changes.",
        "Beta blockers are the only first-line option at any age.",
        "Hypertension guideline: ACEi/ARB, CCB or thiazide-like diuretic as step 1.",
    ),
    (
        "Is it safe to take St John's wort with an SSRI during pregnancy? ({n})",
        "No. St John's wort with an SSRI risks serotonin syndrome, and its safety in pregnancy is "
        "not established. Discuss any change with the prescriber before stopping or adding.",
        "Yes, herbal remedies are natural and always safe in pregnancy.",
        "St John's wort: serotonergic; avoid with SSRIs.",
    ),
]

LEGAL = [
    (
        "Does clause {n} of this NDA let the recipient share information with contractors?",
        "Only if the contractors need to know the information for the permitted purpose and are "
        "bound by written confidentiality obligations at least as strict as the NDA's.",
        "Yes, the recipient may share it with anyone they choose.",
        "Clause {n}: Recipient may disclose to employees and contractors with a need to know, "
        "provided they are bound by written obligations no less protective.",
    ),
    (
        "What notice period applies if the tenant ends a periodic monthly tenancy? ({n})",
        "The tenant must give at least one full rental period of notice, ending on the last day "
        "of a period, unless the agreement provides for a longer notice.",
        "No notice is needed; the tenant can leave the same day.",
        "Periodic tenancy: tenant's notice = one full period ending on a period date.",
    ),
    (
        "Summarise the limitation of liability in the master services agreement, section {n}.",
        "Each party's total liability is capped at the fees paid in the 12 months before the "
        "claim, excluding liability for fraud, death or personal injury, and the indemnities.",
        "Liability is unlimited for both parties in every case.",
        "Section {n}: aggregate liability capped at fees paid in the preceding twelve months; "
        "caps do not apply to fraud, death, personal injury or the indemnification obligations.",
    ),
    (
        "Can my employer change my working hours without my consent? Contract ref {n}.",
        "Not unilaterally, unless your contract has a clear variation clause that covers the "
        "change and it is applied reasonably; otherwise the change needs your agreement.",
        "Employers can always change hours at will; a lawsuit would fail.",
        "Variation of contract requires agreement or an express, reasonable variation clause.",
    ),
]

FINANCE_INVOICES = [
    (
        "ACME Medical Supplies Ltd",
        "INV-{n}",
        "2026-10-{d:02d}",
        "EUR",
        [("Nitrile gloves", 40, 6.5), ("Syringes 5 ml", 12, 11.0)],
    ),
    (
        "Northwind Legal LLP",
        "NW-{n}",
        "2026-09-{d:02d}",
        "GBP",
        [("Contract review (hours)", 6, 180.0)],
    ),
    (
        "Contoso Cloud GmbH",
        "CC-2026-{n}",
        "2026-11-{d:02d}",
        "EUR",
        [("Compute credits", 1, 1200.0), ("Support plan", 1, 99.0)],
    ),
]

INVOICE_PROMPT = (
    "Extract supplier, invoice number, date (ISO 8601), currency and total as JSON from this "
    "invoice:\n\n{text}"
)


def invoice_text(supplier, number, date, currency, lines) -> str:
    rows = "\n".join(f"{desc}  x{qty}  {price:.2f}" for desc, qty, price in lines)
    total = sum(qty * price for _, qty, price in lines)
    return f"{supplier}\nInvoice {number}   Date: {date}\n{rows}\nTotal due: {total:.2f} {currency}"


INVOICE_SCHEMA = {
    "type": "object",
    "required": ["supplier", "invoice_number", "date", "currency", "total"],
    "properties": {
        "supplier": {"type": "string", "minLength": 1},
        "invoice_number": {"type": "string", "minLength": 1},
        "date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "currency": {"type": "string", "enum": ["EUR", "GBP", "USD"]},
        "total": {"type": "number", "minimum": 0},
    },
    "additionalProperties": False,
}


def _pick_output(rng: random.Random, good: str, bad: str) -> tuple[str, float]:
    """Mostly good answers with high confidence, some wrong ones with lower confidence."""
    if rng.random() < 0.2:
        return bad, round(rng.uniform(0.35, 0.8), 2)
    return good, round(rng.uniform(0.6, 0.99), 2)


def text_items(rng: random.Random, templates, count: int, prefix: str, system: str, model: str):
    for n in range(count):
        prompt, good, bad, context = templates[n % len(templates)]
        values = {"n": 100 + n, "w": 55 + n % 40, "age": 35 + n % 40}
        output, confidence = _pick_output(rng, good.format(**values), bad.format(**values))
        yield {
            "external_id": f"{prefix}-{n:04d}",
            "prompt": prompt.format(**values),
            "messages": [{"role": "system", "content": system}],
            "output": output,
            "model_name": model,
            "model_version": "2026-10-01" if n % 3 else "2026-11-01",
            "confidence": confidence,
            "context": [
                {"text": context.format(**values), "source": f"{prefix}-kb", "title": "Reference"}
            ],
            "metadata": {"channel": rng.choice(["web", "api", "internal"])},
        }


def invoice_items(rng: random.Random, count: int):
    for n in range(count):
        supplier, number, date, currency, lines = FINANCE_INVOICES[n % len(FINANCE_INVOICES)]
        number, date = number.format(n=5000 + n), date.format(d=1 + n % 28)
        total = round(sum(qty * price for _, qty, price in lines), 2)
        data = {
            "supplier": supplier,
            "invoice_number": number,
            "date": date,
            "currency": currency,
            "total": total,
        }
        roll = rng.random()
        if roll < 0.1:
            output = json.dumps({**data, "total": str(total)})  # wrong type: schema failure
        elif roll < 0.15:
            output = f"Supplier: {supplier}, total {total}"  # not JSON at all
        elif roll < 0.3:
            output = json.dumps({**data, "total": round(total * 1.1, 2)})  # plausible but wrong
        else:
            output = json.dumps(data)
        yield {
            "external_id": f"inv-{n:04d}",
            "prompt": INVOICE_PROMPT.format(
                text=invoice_text(supplier, number, date, currency, lines)
            ),
            "output": output,
            "model_name": "ledger-extract",
            "model_version": "v3.2" if n % 2 else "v3.1",
            "confidence": round(rng.uniform(0.5, 0.99), 2),
            "metadata": {"source": "accounts-payable inbox"},
        }
