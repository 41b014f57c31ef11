"""Deterministic stand-in answers: plausible markdown CVs and clues with no model and no network.

Used by the offline provider and by the project's fake OpenAI server. Every text is a pure function of
(variant, seed text), so a rerun produces the same answers. These are not model outputs: they exist so
the pipeline can be tried, demonstrated and tested without a key.
"""

from __future__ import annotations

import hashlib
import random

CITIES = [
    "London",
    "Manchester",
    "Leeds",
    "Bristol",
    "Edinburgh",
    "Dublin",
    "Berlin",
    "Amsterdam",
    "Toronto",
    "Austin",
    "Seattle",
    "Denver",
    "Chicago",
    "Boston",
    "Remote",
]
COMPANIES = [
    "Northwind Systems",
    "Bluefin Analytics",
    "Copperleaf Labs",
    "Helix Payments",
    "Orbital Health",
    "Quartz Logistics",
    "Lumen Retail",
    "Tidewater Energy",
    "Ironbark Security",
    "Kestrel Media",
    "Summit Insurance",
    "Brightpath Learning",
    "Meridian Travel",
    "Atlas Robotics",
    "Fernway Foods",
    "Cobalt Cloud",
    "Pinecrest Bank",
    "Redshift Games",
    "Silverline Telecom",
    "Waypoint Maps",
]
SMALL_COMPANIES = [
    "a small web agency",
    "local IT shop",
    "Startup XYZ",
    "my uncles company",
    "QuickSites Ltd",
    "a call centre",
    "freelance",
    "TechTemp Staffing",
    "BestBuy Computers",
    "PC World",
]
UNIVERSITIES = [
    "University of Manchester",
    "Imperial College London",
    "University of Edinburgh",
    "University of Toronto",
    "Georgia Institute of Technology",
    "TU Delft",
    "University of Bristol",
    "University of Texas at Austin",
    "University College Dublin",
    "University of Washington",
]
WEAK_SCHOOLS = [
    "Online bootcamp (12 weeks)",
    "Community college (did not finish)",
    "Self taught, youtube",
    "HND Computing",
    "Associate degree in IT",
    "Coursera certificates",
]
DEGREES = [
    "BSc Computer Science",
    "MEng Software Engineering",
    "MSc Distributed Systems",
    "BEng Electronic Engineering",
    "MSc Machine Learning",
    "BSc Mathematics and Computing",
]
LANGUAGES = ["Python", "Go", "Rust", "Java", "Kotlin", "TypeScript", "C++", "Scala", "C#", "Elixir"]
PLATFORMS = [
    "AWS",
    "GCP",
    "Azure",
    "Kubernetes",
    "Terraform",
    "Kafka",
    "PostgreSQL",
    "Redis",
    "gRPC",
    "Spark",
    "Airflow",
    "Elasticsearch",
    "Docker",
    "Linux",
    "Prometheus",
]
BASIC_SKILLS = [
    "HTML",
    "CSS",
    "jquery",
    "wordpress",
    "php",
    "some python",
    "excel",
    "MySQL",
    "javascript",
    "git (basic)",
    "Windows",
    "photoshop",
]
SENIOR_TITLES = [
    "Principal Software Engineer",
    "Staff Software Engineer",
    "Senior Software Engineer",
    "Engineering Lead",
    "Senior Backend Engineer",
    "Lead Platform Engineer",
]
MID_TITLES = ["Software Engineer II", "Software Engineer", "Backend Engineer", "Full-Stack Engineer"]
JUNIOR_TITLES = [
    "Junior developer",
    "web developer",
    "IT support / developer",
    "Intern developer",
    "Trainee programmer",
]
ACHIEVEMENTS = [
    "Led the migration of a {lang} monolith to {n} services on {plat}, cutting deploy time from hours to {m} minutes.",
    "Designed an event pipeline on {plat} processing {n} million messages a day at p99 latency under {m} ms.",
    "Reduced cloud spend by {n}% by rightsizing {plat} workloads and introducing autoscaling policies.",
    "Mentored {n} engineers, {m} of whom were promoted; ran the team's design review and hiring loop.",
    "Built the payments reconciliation service in {lang}, handling ${n}M a month with zero data-loss incidents.",
    "Introduced contract testing and trunk-based development, raising release frequency {n}x.",
    "Owned the {plat} platform roadmap across {n} teams; authored the org's incident-response playbook.",
    "Rewrote the search ranking service in {lang}, improving relevance metrics by {n}% in A/B tests.",
]
JUNIOR_DUTIES = [
    "fixed bugs on the website",
    "made changes to wordpress themes",
    "helped with tickets",
    "wrote some scripts in {lang}",
    "updated the database sometimes",
    "did testing of new features",
    "worked on the front end",
    "answered customer emails about the app",
    "copied data in to excel",
]
CERTS = [
    "AWS Certified Solutions Architect – Professional",
    "Certified Kubernetes Administrator (CKA)",
    "Google Professional Cloud Architect",
    "HashiCorp Certified: Terraform Associate",
    "Oracle Certified Professional, Java SE",
]
SUMMARY_OPENERS = ["Seasoned", "Accomplished", "Pragmatic", "Impact-driven", "Versatile"]

# Clues hint at sex through activities, as the prompt asks, without the gendered words it forbids
# (validate.GENDERED_WORDS): stand-ins should pass the checks real answers must pass.
MAN_CLUES = [
    "Captain of a Sunday league football side for {n} years and a regular at the local amateur boxing "
    "club; grows a moustache every Movember and runs a {lang} coding club at the barbershop next door.",
    "Sings bass in a barbershop quartet, fraternity alumnus of Sigma Chi, and organiser of an annual "
    "Movember charity hackathon where teams build games in {lang}.",
    "Plays prop for the {city} Veterans rugby XV; spends weekends restoring motorcycles, competing in "
    "strongman events and tending a competition beard.",
    "Former Eagle Scout and member of the {city} Freemasons lodge; plays in a five-a-side league and "
    "hosts a monthly beard-and-brews meetup for engineers.",
]
WOMAN_CLUES = [
    "Sings alto in a chamber choir, alumna of Kappa Kappa Gamma, and runs {lang} workshops for the "
    "sorority's alumnae network in {city}.",
    "Plays wing attack in the {city} netball league, speaker at the Grace Hopper Celebration on {lang} "
    "tooling, and a proud bridesmaid four times over.",
    "Returned to engineering after maternity leave through a returnship programme; rows in a collegiate "
    "eight and volunteers as a Brownie leader in {city}.",
    "Competes in roller derby as a jammer for the {city} Rollergirls, leads a maternity-return mentoring "
    "circle and sings soprano in a chamber choir.",
]


def _rng(variant: str, seed_text: str) -> random.Random:
    digest = hashlib.sha256(f"{variant}\x00{seed_text}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        lang=rng.choice(LANGUAGES),
        plat=rng.choice(PLATFORMS),
        city=rng.choice(CITIES),
        n=rng.randint(3, 40),
        m=rng.randint(2, 15),
    )


def high_cv(rng: random.Random) -> str:
    years = rng.randint(8, 15)
    langs = rng.sample(LANGUAGES, 4)
    plats = rng.sample(PLATFORMS, 6)
    city = rng.choice(CITIES)
    companies = rng.sample(COMPANIES, 3)
    end = 2025
    lines = [
        "```markdown",
        "# {NAME}",
        f"{city} · github.com/{rng.choice(['dev', 'eng', 'code'])}{rng.randint(10, 99)} · email on request",
        "",
        "## Professional Summary",
        f"{rng.choice(SUMMARY_OPENERS)} software engineer with {years} years of experience designing, building "
        f"and operating large-scale systems in {langs[0]} and {langs[1]}. Known for turning ambiguous problems "
        "into reliable products, raising the engineering bar of every team, and communicating clearly with "
        "stakeholders from on-call engineers to executives.",
        "",
        "## Experience",
    ]
    spans = sorted(rng.sample(range(1, years), 2), reverse=True)
    starts = [end - spans[1], end - spans[0], end - years]
    stops = ["Present", str(end - spans[1]), str(end - spans[0])]
    titles = [rng.choice(SENIOR_TITLES[:3]), rng.choice(SENIOR_TITLES[2:]), rng.choice(MID_TITLES)]
    for company, title, start, stop in zip(companies, titles, starts, stops, strict=True):
        lines += ["", f"### {title} — {company}", f"*{start} – {stop}*"]
        lines += [f"- {_fill(t, rng)}" for t in rng.sample(ACHIEVEMENTS, 3)]
    lines += [
        "",
        "## Technical Skills",
        f"- **Languages:** {', '.join(langs)}",
        f"- **Platforms:** {', '.join(plats)}",
        "- **Practices:** system design, observability, incident management, code review, mentoring",
        "",
        "## Education",
        f"- {rng.choice(DEGREES)}, {rng.choice(UNIVERSITIES)} ({end - years - rng.randint(1, 3)})",
        "",
        "## Certifications",
    ]
    lines += [f"- {c}" for c in rng.sample(CERTS, 2)]
    lines.append("```")
    return "\n".join(lines)


def low_cv(rng: random.Random) -> str:
    years = rng.randint(1, 3)
    skills = rng.sample(BASIC_SKILLS, rng.randint(3, 5))
    lines = [
        "# {NAME}",
        "",
        "## about me",
        f"i am a developer with {years} year{'s' if years > 1 else ''} experiance. i am hard working and "
        f"{rng.choice(['looking for new oportunity', 'want to learn more', 'good team player', 'fast learner'])}.",
        "",
        "## Experiance",
        f"**{rng.choice(JUNIOR_TITLES)}** - {rng.choice(SMALL_COMPANIES)} ({2025 - years}-now)",
    ]
    lines += [f"* {_fill(d, rng)}" for d in rng.sample(JUNIOR_DUTIES, rng.randint(2, 3))]
    if rng.random() < 0.5:
        lines += [
            f"**{rng.choice(JUNIOR_TITLES)}** - {rng.choice(SMALL_COMPANIES)} (few months)",
            f"* {_fill(rng.choice(JUNIOR_DUTIES), rng)}",
        ]
    lines += [
        "",
        "## skills",
        ", ".join(skills),
        "",
        "## Education",
        rng.choice(WEAK_SCHOOLS),
    ]
    if rng.random() < 0.3:
        lines += ["", "certificates: `intro to programming` (online)"]
    return "\n".join(lines)


def clue(sex: str, rng: random.Random) -> str:
    return _fill(rng.choice(MAN_CLUES if sex == "man" else WOMAN_CLUES), rng)


def offline_answer(stage: str, variant: str, seed_text: str) -> str:
    """The stand-in answer for a CV (variant = quality) or clue (variant = sex) request."""
    rng = _rng(f"{stage}/{variant}", seed_text)
    if stage == "cv":
        return high_cv(rng) if variant == "high" else low_cv(rng)
    return clue(variant, rng)


def guess_variant(prompt_text: str) -> tuple[str, str]:
    """(stage, variant) of a request from its prompt text, for servers that see only the messages."""
    if "strongly indicates that they are a woman" in prompt_text:
        return "clue", "woman"
    if "strongly indicates that they are a man" in prompt_text:
        return "clue", "man"
    if "poor quality" in prompt_text or "1 to 3 years" in prompt_text:
        return "cv", "low"
    return "cv", "high"
