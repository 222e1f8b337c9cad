"""Free-text reports for phantom studies, in MIMIC-CXR's style, with their CheXpert labels.

Every sentence is generated together with the labels it asserts (1 positive, 0 negative, -1
uncertain), so the study's CheXpert row is the aggregate of what its FINDINGS and IMPRESSION
actually say: positive beats uncertain beats negative, unmentioned stays blank, and "No
Finding" is 1 when no pathology (Support Devices aside) is positive or uncertain. Wording
avoids words that a CheXpert-style labeler would read as another observation (e.g. "lines"
outside Support Devices, "opacity" outside Lung Opacity).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from clip2clinic.observations import CHEXPERT_CLASSES, FINDINGS
from clip2clinic.phantom.truth import ZONE, Finding, Study

Labels = dict[str, int]

#: The paper's Table 1: the most frequent normal reports of MIMIC-CXR and their counts.
NORMAL_IMPRESSIONS: tuple[tuple[str, int], ...] = (
    ("No acute cardiopulmonary process.", 15829),
    ("No acute intrathoracic process.", 4643),
    ("No acute cardiopulmonary abnormality.", 4488),
    ("No evidence of acute cardiopulmonary process.", 1255),
    ("No evidence of pneumonia.", 1014),
    ("Normal chest radiograph.", 600),
    ("No acute cardiopulmonary findings.", 500),
)
EXTRA_NORMAL_IMPRESSION = "No active lung lesion."


@dataclass(frozen=True)
class Statement:
    """One sentence and the CheXpert labels it asserts."""

    text: str
    labels: tuple[tuple[str, int], ...] = ()


def _s(text: str, **labels: int) -> Statement:
    names = {name.replace(" ", "_"): name for name in CHEXPERT_CLASSES}
    return Statement(text, tuple((names[k], v) for k, v in labels.items()))


# Templates per observation. Slots: {chg} (temporal prefix, may be empty), {sev}, {sevly},
# {side}, {lobe}, {zone}, {rib}, {cm}. Bilateral findings use the "bilateral" lists.
_POSITIVE: dict[str, tuple[str, ...]] = {
    "Pleural Effusion": (
        "{chg}{sev} {side} pleural effusion.",
        "There is a {chg}{sev} {side} pleural effusion.",
        "A {chg}{sev} {side} pleural effusion is present.",
        "{chg}{side} pleural effusion, {sev} in size.",
        "{chg}{sev} {side} effusion with blunting of the costophrenic angle.",
        "{chg}{sev} {side}-sided pleural effusion.",
    ),
    "Pneumothorax": (
        "{chg}{sev} {side} apical pneumothorax.",
        "There is a {chg}{sev} {side} pneumothorax.",
        "{chg}{side} pneumothorax, {sev} in size, predominantly apical.",
        "A {chg}{sev} {side}-sided pneumothorax is seen at the apex.",
    ),
    "Cardiomegaly": (
        "{chg}{sev} cardiomegaly.",
        "The heart is {sevly} enlarged.",
        "{chg}{sev} enlargement of the cardiac silhouette.",
        "The cardiac silhouette is {sevly} enlarged.",
        "Heart size is {sevly} enlarged.",
    ),
    "Enlarged Cardiomediastinum": (
        "The mediastinum is {sevly} widened.",
        "{chg}{sev} widening of the mediastinum.",
        "The mediastinal silhouette is {sevly} widened.",
        "{chg}{sev} enlargement of the cardiomediastinal silhouette.",
    ),
    "Edema": (
        "{chg}{sev} pulmonary edema.",
        "There is {chg}{sev} interstitial pulmonary edema.",
        "{chg}{sev} perihilar edema.",
        "Findings are consistent with {chg}{sev} pulmonary edema.",
    ),
    "Consolidation": (
        "{chg}{sev} consolidation in the {lobe}.",
        "{chg}{sev} {lobe} consolidation.",
        "There is {chg}{sev} {lobe} consolidation with air bronchograms.",
        "Dense consolidation is present in the {lobe}.",
    ),
    "Pneumonia": (
        "{chg}{lobe} pneumonia.",
        "Findings are consistent with {chg}{lobe} pneumonia.",
        "{chg}{sev} pneumonia in the {lobe}.",
        "There is {chg}{lobe} pneumonia.",
    ),
    "Lung Opacity": (
        "{chg}{sev} opacity in the {lobe}.",
        "{chg}{sev} opacification of the {zone}.",
        "There is a {chg}{sev} opacity projecting over the {zone}.",
        "{chg}{sev} airspace opacity in the {lobe}.",
    ),
    "Atelectasis": (
        "{chg}{sev} {side} basilar atelectasis.",
        "Plate-like atelectasis at the {side} lung base.",
        "{chg}{sev} linear atelectasis in the {side} lower lobe.",
        "{chg}{side} basilar subsegmental atelectasis.",
    ),
    "Lung Lesion": (
        "{chg}{cm} cm {kind} in the {lobe}.",
        "There is a {chg}{cm} cm {lobe} pulmonary {kind}.",
        "A rounded {kind} measuring {cm} cm projects over the {lobe}.",
    ),
    "Pleural Other": (
        "{chg}{sev} {side} pleural thickening.",
        "Pleural thickening along the {side} lateral chest wall.",
        "{chg}{sev} {side} lateral pleural thickening.",
    ),
    "Fracture": (
        "{chg}{age} fracture of the lateral {side} {rib} rib.",
        "There is a {chg}{age} {side} {rib} rib fracture.",
        "{chg}{age} fracture of the {side} {rib} rib.",
    ),
}
_BILATERAL: dict[str, tuple[str, ...]] = {
    "Pleural Effusion": (
        "{chg}{sev} bilateral pleural effusions.",
        "There are {chg}{sev} bilateral pleural effusions.",
        "Bilateral pleural effusions, {sev} in size.",
        "{chg}{sev} bilateral effusions.",
    ),
    "Atelectasis": (
        "{chg}{sev} bibasilar atelectasis.",
        "Bibasilar plate-like atelectasis.",
        "{chg}{sev} atelectasis at both lung bases.",
    ),
    "Lung Opacity": (
        "{chg}{sev} bilateral opacities in the lower lungs.",
        "{chg}bilateral {sev} basilar opacities.",
        "There are {chg}{sev} opacities at both lung bases.",
    ),
}
_UNCERTAIN: dict[str, tuple[str, ...]] = {
    "Pleural Effusion": (
        "Possible small {side} pleural effusion.",
        "A small {side} pleural effusion cannot be excluded.",
        "Blunting of the {side} costophrenic angle may represent a small pleural effusion.",
    ),
    "Pneumothorax": (
        "Possible tiny {side} apical pneumothorax.",
        "A small {side} apical pneumothorax cannot be excluded.",
    ),
    "Cardiomegaly": (
        "Possible mild cardiomegaly.",
        "Borderline size of the cardiac silhouette.",
    ),
    "Enlarged Cardiomediastinum": (
        "The mediastinum is possibly widened.",
        "Apparent widening of the mediastinum may be due to technique.",
    ),
    "Edema": (
        "Possible mild pulmonary edema.",
        "Mild interstitial edema cannot be excluded.",
    ),
    "Consolidation": (
        "Possible consolidation in the {lobe}.",
        "Consolidation in the {lobe} cannot be excluded.",
    ),
    "Pneumonia": (
        "Possible early pneumonia in the {lobe}.",
        "Pneumonia in the {lobe} cannot be excluded.",
        "Findings may represent early {lobe} pneumonia.",
    ),
    "Lung Opacity": ("Possible subtle opacity in the {lobe}.",),
    "Atelectasis": (
        "Possible {side} basilar atelectasis.",
        "Minimal {side} basilar atelectasis cannot be excluded.",
    ),
    "Lung Lesion": (
        "Possible {kind} in the {lobe}; consider CT for further evaluation.",
        "A {kind} in the {lobe} cannot be excluded.",
    ),
    "Pleural Other": ("Possible {side} pleural thickening.",),
    "Fracture": (
        "Possible nondisplaced fracture of the {side} {rib} rib.",
        "A fracture of the {side} {rib} rib cannot be excluded.",
    ),
}
_DEVICES: dict[str, tuple[str, ...]] = {
    "et_tube": (
        "Endotracheal tube terminates {cm} cm above the carina.",
        "The endotracheal tube tip is {cm} cm above the carina.",
        "ET tube in standard position.",
    ),
    "ng_tube": (
        "Enteric tube courses below the diaphragm with tip in the stomach.",
        "Nasogastric tube tip is in the stomach.",
        "An orogastric tube terminates in the stomach.",
    ),
    "central_line": (
        "{Route} central venous catheter terminates in the SVC.",
        "{Route} line tip in the mid SVC.",
        "{Route} catheter ends at the cavoatrial junction.",
    ),
    "picc": (
        "{side} PICC line terminates in the lower SVC.",
        "A {side}-sided PICC ends at the cavoatrial junction.",
    ),
    "pacemaker": (
        "Left chest wall pacemaker with leads in the right atrium and right ventricle.",
        "Dual-lead pacemaker device is in place.",
        "Left-sided pacemaker with leads terminating in the right ventricle.",
    ),
    "sternotomy": (  # "hardware": the word CheXpert-style labelers read as a device
        "Sternal wires and surgical hardware are intact.",
        "Intact sternal wire hardware.",
    ),
    "chest_tube": (
        "{side} chest tube in place.",
        "A {side}-sided chest tube is present.",
    ),
}
_JOINT = {  # carrier (positive, same lobe) + pneumonia
    1: ("consistent with", "in keeping with"),
    -1: ("concerning for", "which may represent", "suspicious for"),
}
_CHANGE_PREFIX = {
    "new": ("new ",),
    "unchanged": ("unchanged ", "stable ", "persistent "),
    "increased": ("slightly increased ", "increased ", "worsening "),
    "decreased": ("decreased ", "improving ", "slightly decreased "),
}
_CHANGE_SUFFIX = {
    "new": (", new since the prior study", ", new compared to prior"),
    "unchanged": (", unchanged from prior", ", stable compared to the prior exam"),
    "increased": (", increased compared to prior", ", slightly increased since the prior study"),
    "decreased": (", decreased compared to prior", ", improved since the prior study"),
}
_ADVERB = {"mild": "mildly", "moderate": "moderately", "severe": "severely", "marked": "markedly"}
_ORDINAL = {4: "4th", 5: "5th", 6: "6th", 7: "7th", 8: "8th", 9: "9th"}
_ZONE_WORDS = {"upper": "upper lung", "mid": "mid lung", "lower": "lung base"}
_RESOLVED = ("Pleural Effusion", "Pneumothorax", "Consolidation", "Pneumonia", "Edema",
             "Lung Opacity", "Atelectasis")
_NAME = {"Pleural Effusion": "pleural effusion", "Pneumothorax": "pneumothorax",
         "Consolidation": "consolidation", "Pneumonia": "pneumonia", "Edema": "pulmonary edema",
         "Lung Opacity": "opacity", "Atelectasis": "atelectasis"}

# Pertinent negatives: (sentence, observations it negates[, others it implies are absent]).
_NEGATIVES: tuple[tuple, ...] = (
    ("No pneumothorax.", ("Pneumothorax",)),
    ("There is no pneumothorax.", ("Pneumothorax",)),
    ("No evidence of pneumothorax.", ("Pneumothorax",)),
    ("No pleural effusion.", ("Pleural Effusion",)),
    ("No pleural effusions.", ("Pleural Effusion",)),
    ("No pleural effusion or pneumothorax.", ("Pleural Effusion", "Pneumothorax")),
    ("There is no pleural effusion or pneumothorax.", ("Pleural Effusion", "Pneumothorax")),
    ("No focal consolidation, pleural effusion, or pneumothorax.",
     ("Consolidation", "Pleural Effusion", "Pneumothorax")),
    ("No focal consolidation.", ("Consolidation",)),
    ("No pulmonary edema.", ("Edema",)),
    ("There is no overt pulmonary edema.", ("Edema",)),
    ("Heart size is normal.", ("Cardiomegaly",)),
    ("The heart is normal in size.", ("Cardiomegaly",)),
    ("The cardiomediastinal silhouette is normal.", ("Enlarged Cardiomediastinum",),
     ("Cardiomegaly",)),
    ("The mediastinal contours are normal.", ("Enlarged Cardiomediastinum",)),
    ("Heart size and mediastinal contours are normal.",
     ("Cardiomegaly", "Enlarged Cardiomediastinum")),
    ("No evidence of pneumonia.", ("Pneumonia",)),
    ("No displaced rib fracture.", ("Fracture",)),
)
_NEGATIVE_P = {"Pneumothorax": 0.6, "Pleural Effusion": 0.5, "Cardiomegaly": 0.35,
               "Consolidation": 0.3, "Edema": 0.25, "Enlarged Cardiomediastinum": 0.2,
               "Pneumonia": 0.1, "Fracture": 0.05}

_NORMAL_LUNGS = (("The lungs are clear.", 5), ("Lungs are clear.", 3),
                 ("The lungs are well expanded and clear.", 2), ("Clear lungs.", 1))
_NORMAL_HEART = (
    (_s("The cardiomediastinal silhouette is within normal limits.",
        Enlarged_Cardiomediastinum=0), 5),
    (_s("Heart size is normal.", Cardiomegaly=0), 3),
    (_s("The heart size is normal. The mediastinal and hilar contours are normal.",
        Cardiomegaly=0, Enlarged_Cardiomediastinum=0), 2),
    (_s("Normal cardiomediastinal silhouette.", Enlarged_Cardiomediastinum=0), 1),
)
_NORMAL_PLEURA = (
    (_s("No pleural effusion or pneumothorax.", Pleural_Effusion=0, Pneumothorax=0), 5),
    (_s("No focal consolidation, pleural effusion, or pneumothorax.", Consolidation=0,
        Pleural_Effusion=0, Pneumothorax=0), 4),
    (_s("There is no pleural effusion or pneumothorax.", Pleural_Effusion=0, Pneumothorax=0), 2),
)
_NORMAL_BONES = (
    (_s("No acute osseous abnormality."), 3),
    (_s("Osseous structures are intact."), 1),
    (_s("No displaced fracture is seen.", Fracture=0), 1),
)

_INDICATION = {
    None: ("cough", "chest pain", "shortness of breath", "fever", "dyspnea on exertion",
           "preoperative evaluation", "hypoxia", "weakness"),
    "pneumonia": ("cough and fever", "productive cough", "fever and hypoxia"),
    "heart_failure": ("dyspnea and leg swelling", "worsening shortness of breath"),
    "atelectasis": ("post-operative, low oxygen saturation", "hypoxia"),
    "effusion": ("dyspnea", "decreased breath sounds"),
    "opacity": ("cough", "fever"),
    "pneumothorax": ("sudden chest pain", "acute shortness of breath"),
    "trauma": ("fall with chest wall pain", "motor vehicle collision, chest pain"),
    "mass": ("weight loss and hemoptysis", "chronic cough, smoker"),
}
_ICU_INDICATION = ("respiratory failure, evaluate for interval change", "sepsis",
                   "hypoxic respiratory failure", "hypotension, s/p procedure")


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _weighted(rng: np.random.Generator, options):
    weights = np.array([w for _, w in options], dtype=float)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, f: Finding, rng: np.random.Generator, change: str | None) -> str:
    """Fill a template's slots from the finding; a change goes in {chg} or as a suffix."""
    prefix = suffix = ""
    if change:
        if "{chg}" in template and rng.random() < 0.6:
            prefix = _choice(rng, _CHANGE_PREFIX[change])
        else:
            suffix = _choice(rng, _CHANGE_SUFFIX[change])
    sev = f.severity_word or ""
    lobe = f.location or ""
    side = f.laterality or ""
    zone = f"{side} {_ZONE_WORDS[ZONE[lobe]]}" if lobe in ZONE else lobe
    size_cm = f"{f.number / 10:.1f}" if f.number and f.observation == "Lung Lesion" else ""
    text = template.format(
        chg=prefix, sev=sev, sevly=_ADVERB.get(sev, sev), side=side, lobe=lobe, zone=zone,
        rib=_ORDINAL.get(f.number or 0, ""), cm=size_cm, kind=f.kind or "",
        age="healed" if f.kind == "healed" else "acute",
    )
    text = " ".join(text.split())
    if suffix:
        text = text[:-1] + suffix + "."
    return _capitalise(text)


def finding_statement(f: Finding, rng: np.random.Generator, change: str | None = None
                      ) -> Statement:
    """A sentence stating one finding, hedged when the finding is uncertain."""
    if f.observation == "Support Devices":
        template = _choice(rng, _DEVICES[f.kind])
        text = template.format(
            cm=f"{rng.integers(3, 7)}", side=f.laterality or "",
            Route=_capitalise(f"{f.location} ") if f.location else "",
        )
        if change == "unchanged" and rng.random() < 0.5:
            text = text[:-1] + ", unchanged in position."
        return Statement(_capitalise(" ".join(text.split())), (("Support Devices", 1),))
    if f.presence == "uncertain":
        return Statement(_fill(_choice(rng, _UNCERTAIN[f.observation]), f, rng, None),
                         ((f.observation, -1),))
    pool = _BILATERAL if f.laterality == "bilateral" and f.observation in _BILATERAL else _POSITIVE
    return Statement(_fill(_choice(rng, pool[f.observation]), f, rng, change),
                     ((f.observation, 1),))


def _joint_pneumonia(pneumonia: Finding, carrier: Finding, rng: np.random.Generator
                     ) -> Statement:
    """E.g. "Right lower lobe consolidation concerning for pneumonia."."""
    label = 1 if pneumonia.presence == "positive" else -1
    noun = "consolidation" if carrier.observation == "Consolidation" else "opacity"
    link = _choice(rng, _JOINT[label])
    text = f"{carrier.severity_word} {noun} in the {carrier.location} {link} pneumonia."
    return Statement(_capitalise(text), ((carrier.observation, 1), ("Pneumonia", label)))


def _change(f: Finding, prior: Study | None) -> str | None:
    if prior is None or f.presence != "positive":
        return None
    before = {p.key(): p for p in prior.findings}.get(f.key())
    if before is None:
        return "new"
    if before.severity == f.severity or f.observation not in _ADVERB_OBS:
        return "unchanged"
    return "increased" if f.severity > before.severity else "decreased"


_ADVERB_OBS = ("Pleural Effusion", "Pneumothorax", "Cardiomegaly", "Edema", "Consolidation",
               "Pneumonia", "Lung Opacity", "Atelectasis", "Enlarged Cardiomediastinum")


def _finding_statements(study: Study, prior: Study | None, rng: np.random.Generator,
                        temporal: bool) -> list[Statement]:
    """One statement per finding (pneumonia joined to its consolidation/opacity at times)."""
    by_obs = {f.observation: f for f in study.pathologies}
    pneumonia = by_obs.get("Pneumonia")
    carrier = next((by_obs[o] for o in ("Consolidation", "Lung Opacity") if o in by_obs
                    and by_obs[o].presence == "positive" and pneumonia
                    and by_obs[o].location == pneumonia.location), None)
    joined = carrier is not None and rng.random() < 0.6
    out = []
    for f in study.findings:
        if joined and f in (pneumonia, carrier):
            if f is carrier:
                out.append(_joint_pneumonia(pneumonia, carrier, rng))
            continue
        change = _change(f, prior) if temporal and rng.random() < 0.6 else None
        out.append(finding_statement(f, rng, change))
    return out


def _resolved_statements(study: Study, prior: Study | None, rng: np.random.Generator
                         ) -> list[Statement]:
    if prior is None:
        return []
    now = {f.observation for f in study.pathologies}
    out = []
    for f in prior.pathologies:
        if (f.observation in _RESOLVED and f.observation not in now and f.presence == "positive"
                and rng.random() < 0.5):
            side = f"{f.laterality} " if f.laterality in ("left", "right") else ""
            text = _choice(rng, ("Interval resolution of the previously seen {}{}.",
                                 "The previously seen {}{} has resolved."))
            out.append(Statement(text.format(side, _NAME[f.observation]),
                                 ((f.observation, 0),)))
    return out


def _pertinent_negatives(study: Study, rng: np.random.Generator,
                         exclude: set[str] = frozenset()) -> list[Statement]:
    """Negative statements about a random subset of the absent observations (``exclude``:
    absent ones already stated otherwise)."""
    absent = set(FINDINGS) - {f.observation for f in study.findings}
    wanted = {o for o in absent - exclude if rng.random() < _NEGATIVE_P.get(o, 0.0)}
    out = []
    while wanted:
        fitting = []
        for text, negates, *implied in _NEGATIVES:
            needs_absent = set(negates).union(*implied)
            if needs_absent <= absent and set(negates) & wanted and not set(negates) & exclude:
                fitting.append((text, negates))
        text, negates = fitting[int(rng.integers(len(fitting)))]
        out.append(Statement(text, tuple((o, 0) for o in negates)))
        wanted -= set(negates)
    return out


def _normal_findings(rng: np.random.Generator) -> list[Statement]:
    lungs = Statement(_weighted(rng, _NORMAL_LUNGS))
    parts = [lungs, _weighted(rng, _NORMAL_HEART), _weighted(rng, _NORMAL_PLEURA)]
    if rng.random() < 0.3:
        parts[0], parts[1] = parts[1], parts[0]
    if rng.random() < 0.4:
        parts.append(_weighted(rng, _NORMAL_BONES))
    return parts


def normal_impression(rng: np.random.Generator) -> Statement:
    """One of the templated normal impressions, as often as in the paper's Table 1."""
    text = _weighted(rng, NORMAL_IMPRESSIONS)
    return Statement(text, (("Pneumonia", 0),) if "pneumonia" in text else ())


def aggregate(statements: list[Statement]) -> dict[str, float | None]:
    """CheXpert row of a report: 1 > -1 > 0 per observation, blank when unmentioned."""
    seen: dict[str, set[int]] = {}
    for statement in statements:
        for obs, value in statement.labels:
            seen.setdefault(obs, set()).add(value)
    labels: dict[str, float | None] = {}
    for obs in FINDINGS:
        values = seen.get(obs, set())
        labels[obs] = next((float(v) for v in (1, -1, 0) if v in values), None)
    pathology = any(labels[o] in (1.0, -1.0) for o in FINDINGS if o != "Support Devices")
    labels["No Finding"] = None if pathology else 1.0
    return {name: labels[name] for name in CHEXPERT_CLASSES}


def _section(title: str, sentences: list[str], numbered: bool = False) -> str:
    if numbered and len(sentences) > 1:
        body = "\n".join(f"{i}. {s}" for i, s in enumerate(sentences, 1))
    else:
        body = "  ".join(sentences)
    lines = [textwrap.fill(p, 78, initial_indent=" ", subsequent_indent=" ")
             for p in body.split("\n")]
    return f" {title}: \n \n" + "\n".join(lines)


def _header(examination: str, indication: str, technique: str | None, comparison: str) -> list:
    parts = [f" EXAMINATION:  {examination}", f" INDICATION:  {indication}"]
    if technique:
        parts.append(f" TECHNIQUE:  {technique}")
    parts.append(f" COMPARISON:  {comparison}")
    return parts


def render(parts: list[str]) -> str:
    return " " * 33 + "FINAL REPORT\n" + "\n \n".join(parts) + "\n"


def extra_normal_report() -> tuple[str, dict[str, float | None]]:
    """The one report shared by every extra normal study (the paper's Table 3 set-up)."""
    impression = Statement(EXTRA_NORMAL_IMPRESSION, (("Lung Lesion", 0),))
    parts = [" EXAMINATION:  CHEST (PA AND LAT)", " INDICATION:  ___",
             _section("IMPRESSION", [impression.text])]
    return render(parts), aggregate([impression])


def write_report(study: Study, prior: Study | None, rng: np.random.Generator
                 ) -> tuple[str, dict[str, float | None]]:
    """The report text of ``study`` and its CheXpert labels (``prior``: the patient's last)."""
    if study.extra_normal:
        return extra_normal_report()
    portable = study.views[0] == "AP"
    examination = "CHEST (PORTABLE AP)" if portable else "CHEST (PA AND LAT)"
    complaint = _choice(rng, _ICU_INDICATION if study.ward == "icu" and rng.random() < 0.5
                        else _INDICATION[study.syndrome])
    person = {"F": "woman", "M": "man"}[study.sex]
    indication = _choice(rng, (f"___{study.sex} with {complaint}",
                               f"___-year-old {person} with {complaint}.",
                               f"History: ___{study.sex} with {complaint}"))
    technique = None
    if rng.random() < 0.6:
        technique = ("Portable AP chest." if portable else
                     "Chest PA and lateral." if len(study.views) > 1 else "Single PA view.")
    comparison = (_choice(rng, ("___.", "Chest radiograph ___.", "Prior chest radiographs ___."))
                  if prior else "None.")
    temporal = prior is not None and rng.random() < 0.8
    layout = rng.choice(3, p=(0.6, 0.32, 0.08) if study.normal else (0.75, 0.2, 0.05))
    has_findings, has_impression = layout != 1, layout != 2

    if study.normal:
        body = _normal_findings(rng) if has_findings else []
        devices = _finding_statements(study, prior, rng, temporal)
        body = body[:1] + devices + body[1:]
        impression = [normal_impression(rng)]
        if not has_findings:
            impression = devices + impression
        elif temporal and rng.random() < 0.5:
            body.insert(0, Statement("No significant interval change."))
    else:
        statements = _finding_statements(study, prior, rng, temporal)
        resolved = _resolved_statements(study, prior, rng)
        negatives = _pertinent_negatives(study, rng, {s.labels[0][0] for s in resolved
                                                      if s.labels})
        body = statements + resolved + negatives
        n_restate = min(len(statements), int(rng.integers(1, 4)))
        impression = [finding_statement(f, rng) for f in study.findings[:n_restate]]
        if not has_findings:
            impression = body
        elif rng.random() < 0.3:
            impression += _pertinent_negatives(study, rng)[:1]
    parts = _header(examination, indication, technique, comparison)
    if has_findings:
        parts.append(_section("FINDINGS", [s.text for s in body]))
    if has_impression or not has_findings:
        numbered = not study.normal and rng.random() < 0.5
        parts.append(_section("IMPRESSION", [s.text for s in impression], numbered))
    else:
        impression = []
    labels = aggregate((body if has_findings else []) + impression)
    return render(parts), labels


def check_labels(study: Study, labels: dict[str, float | None]) -> list[str]:
    """Disagreements between a study's truth and its label row (empty when consistent)."""
    problems = []
    truth = {f.observation: f.presence for f in study.findings}
    for obs in FINDINGS:
        want = {"positive": (1.0,), "uncertain": (-1.0,)}.get(truth.get(obs), (0.0, None))
        if labels[obs] not in want:
            problems.append(f"{obs}: truth {truth.get(obs, 'absent')}, label {labels[obs]}")
    if (labels["No Finding"] == 1.0) != study.normal:
        problems.append(f"No Finding: normal={study.normal}, label {labels['No Finding']}")
    return problems
