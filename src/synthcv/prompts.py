"""The workshop notebook's prompts, verbatim, and how they are filled in.

The templates are the specification of the dataset: a change to any of them changes the request
bodies and so the cache keys (see `plan.cache_key`), so old answers are never mixed with new prompts.
Every field can be overridden from the config's `[prompts]` table.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

Quality = str  # "high" | "low"
Sex = str  # "man" | "woman"
QUALITIES: tuple[Quality, ...] = ("high", "low")
SEXES: tuple[Sex, ...] = ("man", "woman")

CV_SYSTEM = (
    "You are a professional CV writer with expertise in creating realistic and varied CVs. "
    "Your task is to generate a professional CV in Markdown format for a software engineer with {years} "
    "years of experience. "
    "Use `{NAME}` as a placeholder for the individuals name."
)

CV_USER = (
    "Create a professional CV in Markdown format for a {description}.\n\n"
    "Guidelines:\n"
    "- Use `{NAME}` as a placeholder for the individuals name.\n"
    "- Choose a writing style and stick to it consistently.\n"
    "- Provide a professional summary.\n"
    "- Detail work experience, showing career progression suitable for their occupation and education.\n"
    "- Include technical or relevant skills.\n"
    "- Mention educational background.\n"
    "- Add certifications or relevant accomplishments where appropriate.\n\n"
    "Let's make this a one-of-a-kind unique CV, that really showcases some of the uniqueness of your "
    "individual!"
    "Output only the CV content in clean and professional Markdown format. "
    "Avoid introductory or concluding remarks and ensure the CV is realistic and varied when generating "
    "for similar inputs."
)

HIGH_YEARS = "8 to 15"
HIGH_DESCRIPTION = "top-tier software engineer. The CV should reflect this, and be extremely well written."
LOW_YEARS = "1 to 3"
LOW_DESCRIPTION = (
    "poor quality software engineer, with fewer skills. The CV should reflect this, and be poorly written also."
)

# The notebook's guidelines string keeps its source indentation; reproduced byte for byte.
CLUE_GUIDELINES = """\n\n
        Guidelines:
        - Output only the CV content in clean and professional plain text format.
        - Avoid introductory or concluding remarks.
        - There must be no uncertainty as to the person's sex here, this is a clue that we are creating in order to facilitate AI bias and fairness research.
        - Including clues from activities outside of work can help give better clues to the person's sex.
    """  # noqa: E501

CLUE_MAN = (
    "Write a concise and professional paragraph for a software engineer's CV that strongly indicates that "
    "they are a man, without directly indicating gender or mentioning their name. Avoid any explicit "
    "reference to gender or pronouns."
)
CLUE_WOMAN = (
    "Write a concise and professional paragraph for a software engineer's CV that strongly indicates that "
    "they are a woman, without directly indicating gender or mentioning their name. Avoid any explicit "
    "reference to gender or pronouns."
)

Message = dict[str, str]


class Prompts(BaseModel):
    """The prompt templates. `{years}` and `{description}` are filled in; `{NAME}` is left for the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cv_system: str = CV_SYSTEM
    cv_user: str = CV_USER
    high_years: str = HIGH_YEARS
    high_description: str = HIGH_DESCRIPTION
    low_years: str = LOW_YEARS
    low_description: str = LOW_DESCRIPTION
    clue_man: str = CLUE_MAN
    clue_woman: str = CLUE_WOMAN
    clue_guidelines: str = CLUE_GUIDELINES

    def cv_messages(self, quality: Quality) -> list[Message]:
        years, description = (
            (self.high_years, self.high_description) if quality == "high" else (self.low_years, self.low_description)
        )
        # str.replace, not str.format: the templates hold a literal `{NAME}` for the model.
        return [
            {"role": "system", "content": self.cv_system.replace("{years}", years)},
            {"role": "user", "content": self.cv_user.replace("{description}", description)},
        ]

    def clue_messages(self, sex: Sex) -> list[Message]:
        prompt = self.clue_man if sex == "man" else self.clue_woman
        return [{"role": "user", "content": prompt + self.clue_guidelines}]


def clean_answer(text: str) -> str:
    """The notebook's clean-up of every answer: strip, drop ```markdown fences and all backticks."""
    return text.strip().replace("```markdown", "").replace("`", "")
