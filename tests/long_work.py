"""Long work as reviewers get it: a many-turn agent trace ending in a long answer.

Pure data (no Django), shared by the browser tests and bench/otlp.py. The
trace is in OpenAI chat format, the transcript form of POST /items/: system,
user, then rounds of an assistant turn calling a tool and the tool's result,
ending with the assistant's long markdown answer under review.
"""

import json

# Said by a tool and by the user: must be shown as text, never run.
SCRIPT = "<script>window.__hitl_pwned = true</script>"
WORDS = [
    "dose",
    "interval",
    "renal",
    "hepatic",
    "adult",
    "child",
    "tablet",
    "infusion",
    "review",
    "guideline",
    "maximum",
    "minimum",
    "daily",
    "hourly",
    "weight",
    "clearance",
    "monitor",
    "adjust",
    "contraindicated",
    "caution",
    "evidence",
    "trial",
    "cohort",
    "outcome",
]


def long_answer(words: int) -> str:
    """A markdown answer of about ``words`` words: a heading, a list, paragraphs."""
    lines = ["# Dosing summary", "", "- **Adults:** up to 4 g a day", "- *Children:* by weight", ""]
    count, paragraph = 0, []
    while count < words:
        paragraph.append(f"{WORDS[count % len(WORDS)]}{count}")
        count += 1
        if len(paragraph) == 60:
            lines.extend([" ".join(paragraph) + ".", ""])
            paragraph = []
    if paragraph:
        lines.append(" ".join(paragraph) + ".")
    lines.append("The final sentence says the dose is 4 g.")
    return "\n".join(lines)


def agent_messages(*, turns: int = 20, answer_words: int = 5_000) -> list[dict]:
    """``turns`` messages: system, user, (tool call, tool result) rounds, the answer."""
    messages = [
        {"role": "system", "content": "You are a careful clinical assistant. Use the tools."},
        {"role": "user", "content": f"What is the paracetamol dose for me? {SCRIPT}"},
    ]
    rounds = (turns - 3) // 2
    for n in range(rounds):
        call_id = f"call_{n}"
        messages.append(
            {
                "role": "assistant",
                "content": f"Step {n}: checking the **formulary**." if n % 3 == 0 else None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": "formulary_lookup",
                            "arguments": json.dumps({"drug": "paracetamol", "section": n}),
                        },
                    }
                ],
            }
        )
        result = f"Section {n}: adults 0.5-1 g every 4-6 hours, at most 4 g in 24 hours."
        if n == 1:
            result += f" {SCRIPT}"
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
    while len(messages) < turns - 1:
        messages.append({"role": "user", "content": "And with alcohol?"})
    messages.append({"role": "assistant", "content": long_answer(answer_words)})
    return messages


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "formulary_lookup",
            "description": "A section of the drug formulary",
            "parameters": {
                "type": "object",
                "properties": {"drug": {"type": "string"}, "section": {"type": "integer"}},
                "required": ["drug"],
            },
        },
    }
]
