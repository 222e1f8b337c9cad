"""The phantom's ground truth: patients, their studies, and the findings of each study.

Sampling follows a small clinical story so that findings co-occur as they do in MIMIC-CXR:
patients come from an outpatient clinic (mostly normal), a ward or an ICU (devices, edema,
effusions, atelectasis); chronic findings (cardiomegaly, a nodule, an old rib fracture, a
pacemaker) persist across a patient's studies; acute episodes (pneumonia, heart failure,
pneumothorax, ...) last a few studies and change in severity, which the reports describe with
temporal phrases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from clip2clinic.observations import FINDINGS

SIDES = ("right", "left")

#: Lobes of each lung, upper to lower, and the vertical zone each one occupies on a frontal view.
LOBES: dict[str, tuple[str, ...]] = {
    "right": ("right upper lobe", "right middle lobe", "right lower lobe"),
    "left": ("left upper lobe", "lingula", "left lower lobe"),
}
ZONE = {
    lobe: zone
    for lobes in LOBES.values()
    for lobe, zone in zip(lobes, ("upper", "mid", "lower"), strict=True)
}

SEVERITY_WORDS: dict[str, tuple[str, str, str]] = {
    "Pleural Effusion": ("small", "moderate", "large"),
    "Pneumothorax": ("small", "moderate", "large"),
    "Cardiomegaly": ("mild", "moderate", "severe"),
    "Enlarged Cardiomediastinum": ("mild", "moderate", "marked"),
    "Edema": ("mild", "moderate", "severe"),
    "Consolidation": ("focal", "moderate", "extensive"),
    "Pneumonia": ("focal", "moderate", "extensive"),
    "Lung Opacity": ("subtle", "patchy", "extensive"),
    "Atelectasis": ("minimal", "mild", "moderate"),
    "Pleural Other": ("mild", "moderate", "marked"),
}

#: Chance that a finding of this observation is reported as uncertain (hedged, label -1).
UNCERTAIN_RATE: dict[str, float] = {
    "Pneumonia": 0.35, "Atelectasis": 0.2, "Edema": 0.15, "Enlarged Cardiomediastinum": 0.15,
    "Consolidation": 0.12, "Lung Lesion": 0.12, "Fracture": 0.12, "Pleural Effusion": 0.08,
    "Cardiomegaly": 0.06, "Pneumothorax": 0.06, "Pleural Other": 0.05, "Lung Opacity": 0.03,
}

WARDS = ("outpatient", "inpatient", "icu")
_WARD_P = (0.64, 0.24, 0.12)
_STUDIES_P = {"outpatient": 0.62, "inpatient": 0.45, "icu": 0.33}  # geometric parameter
_MAX_STUDIES = 8
_EPISODE_START = {"outpatient": 0.07, "inpatient": 0.45, "icu": 0.75}
_EPISODE_CONTINUE = {"outpatient": 0.3, "inpatient": 0.55, "icu": 0.7}
_CHRONIC_P: dict[str, tuple[float, float, float]] = {  # outpatient, inpatient, icu
    "Cardiomegaly": (0.04, 0.15, 0.25),
    "Enlarged Cardiomediastinum": (0.01, 0.03, 0.05),
    "Lung Lesion": (0.02, 0.05, 0.04),
    "Pleural Other": (0.015, 0.03, 0.03),
    "Fracture": (0.015, 0.03, 0.05),
    "pacemaker": (0.01, 0.04, 0.08),
    "sternotomy": (0.01, 0.05, 0.12),
}
_SYNDROMES = ("pneumonia", "heart_failure", "atelectasis", "effusion", "opacity",
              "pneumothorax", "trauma", "mass")
_SYNDROME_W = {
    "outpatient": (3.0, 1.0, 1.0, 1.0, 2.0, 0.6, 0.7, 0.6),
    "inpatient": (4.0, 3.0, 3.0, 2.0, 2.0, 1.0, 0.7, 0.5),
    "icu": (3.0, 4.0, 4.0, 2.0, 2.0, 1.5, 0.7, 0.2),
}
_ICU_DEVICES = {"et_tube": 0.65, "ng_tube": 0.55, "central_line": 0.7}
_DEVICE_KEPT = 0.85


@dataclass(frozen=True)
class Finding:
    """One entity of the truth: an observation with its place, side and severity.

    ``severity`` is a grade 1..3 (see :data:`SEVERITY_WORDS`); ``kind`` is a sub-type (the
    device name for Support Devices, "nodule"/"mass", "acute"/"healed" fracture); ``number``
    is the rib number of a fracture or the size in millimetres of a lesion. An uncertain
    finding is reported hedged; it is drawn faintly, or (``drawn=False``) not at all.
    """

    observation: str
    presence: str = "positive"
    laterality: str | None = None
    location: str | None = None
    severity: int = 1
    kind: str | None = None
    number: int | None = None
    drawn: bool = True

    @property
    def severity_word(self) -> str | None:
        words = SEVERITY_WORDS.get(self.observation)
        return words[self.severity - 1] if words else None

    def key(self) -> tuple:
        """What identifies "the same" finding across a patient's studies."""
        return (self.observation, self.kind if self.observation == "Support Devices" else None)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["severity_word"] = self.severity_word
        return out


@dataclass
class Study:
    """One study: ids, split, views and the truth that images and report are made from."""

    index: int
    patient: int
    subject_id: int
    study_id: int
    ward: str
    sex: str
    age: int
    date: str
    time: str
    views: tuple[str, ...]
    dicom_ids: tuple[str, ...]
    findings: tuple[Finding, ...]
    prior: int | None = None
    split: str = "train"
    extra_normal: bool = False
    syndrome: str | None = None
    labels: dict[str, float | None] = field(default_factory=dict)

    @property
    def pathologies(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.observation != "Support Devices")

    @property
    def normal(self) -> bool:
        """No pathology at all, positive or uncertain (CheXpert's "No Finding")."""
        return not self.pathologies


class _Ids:
    """Unique MIMIC-shaped identifiers drawn from one generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.seen: set[int] = set()

    def _unique(self, low: int, high: int) -> int:
        while True:
            value = int(self.rng.integers(low, high))
            if value not in self.seen:
                self.seen.add(value)
                return value

    def subject(self) -> int:
        return self._unique(10_000_000, 20_000_000)

    def study(self) -> int:
        return self._unique(50_000_000, 60_000_000)

    def dicom(self) -> str:
        return "-".join(f"{int(v):08x}" for v in self.rng.integers(0, 2**32, size=5))


def _pick(rng: np.random.Generator, options, weights=None):
    weights = np.asarray(weights if weights is not None else [1.0] * len(options), float)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))]


def _grade(rng: np.random.Generator) -> int:
    return int(rng.choice(3, p=(0.5, 0.35, 0.15))) + 1


def _lobe(rng: np.random.Generator, side: str | None = None) -> tuple[str, str]:
    side = side or _pick(rng, SIDES, (0.55, 0.45))
    return side, _pick(rng, LOBES[side], (0.3, 0.2, 0.5))


def _finding(rng: np.random.Generator, observation: str, **kw) -> Finding:
    """A finding, made uncertain (mild, maybe invisible) at the observation's rate."""
    kw.setdefault("severity", _grade(rng))
    finding = Finding(observation, **kw)
    if rng.random() < UNCERTAIN_RATE.get(observation, 0.0):
        finding = replace(finding, presence="uncertain", severity=1, drawn=bool(rng.random() < 0.5))
    return finding


def _side_or_both(rng: np.random.Generator, both: float) -> str:
    return "bilateral" if rng.random() < both else _pick(rng, SIDES)


def _chronic(rng: np.random.Generator, ward: str) -> list[Finding]:
    w = WARDS.index(ward)
    found: list[Finding] = []
    p = {name: probs[w] for name, probs in _CHRONIC_P.items()}
    if rng.random() < p["Cardiomegaly"]:
        found.append(_finding(rng, "Cardiomegaly"))
    if rng.random() < p["Enlarged Cardiomediastinum"]:
        found.append(_finding(rng, "Enlarged Cardiomediastinum"))
    if rng.random() < p["Lung Lesion"]:
        found.append(_lesion(rng))
    if rng.random() < p["Pleural Other"]:
        found.append(_finding(rng, "Pleural Other", laterality=_pick(rng, SIDES),
                              location="lateral chest wall"))
    if rng.random() < p["Fracture"]:
        found.append(_fracture(rng, "healed"))
    for device in ("pacemaker", "sternotomy"):
        if rng.random() < p[device]:
            found.append(_device(device, rng))
    return found


def _lesion(rng: np.random.Generator) -> Finding:
    side, lobe = _lobe(rng)
    mass = rng.random() < 0.3
    size = int(rng.integers(32, 65)) if mass else int(rng.integers(12, 28))
    return _finding(rng, "Lung Lesion", laterality=side, location=lobe,
                    kind="mass" if mass else "nodule", number=size, severity=1)


def _fracture(rng: np.random.Generator, kind: str, side: str | None = None) -> Finding:
    side = side or _pick(rng, SIDES)
    rib = int(rng.integers(4, 10))
    return _finding(rng, "Fracture", laterality=side, location=f"lateral {side} rib {rib}",
                    kind=kind, number=rib, severity=1)


_DEVICE_PLACE = {
    "et_tube": ("trachea", None), "ng_tube": ("stomach", None),
    "pacemaker": ("left chest wall", "left"), "sternotomy": ("sternum", None),
}


def _device(kind: str, rng: np.random.Generator, side: str | None = None) -> Finding:
    if kind == "central_line":
        route = _pick(rng, ("right internal jugular", "left internal jugular", "right subclavian",
                            "left subclavian"), (0.5, 0.15, 0.15, 0.2))
        return Finding("Support Devices", laterality=route.split()[0], location=route, kind=kind)
    if kind == "picc":
        side = _pick(rng, SIDES, (0.7, 0.3))
        return Finding("Support Devices", laterality=side, location=f"{side} arm", kind=kind)
    if kind == "chest_tube":
        return Finding("Support Devices", laterality=side, location=f"{side} pleural space",
                       kind=kind)
    location, laterality = _DEVICE_PLACE[kind]
    return Finding("Support Devices", laterality=laterality, location=location, kind=kind)


def _syndrome(rng: np.random.Generator, name: str, ward: str) -> list[Finding]:
    """The findings of a new acute episode."""
    if name == "pneumonia":
        side, lobe = _lobe(rng)
        found = [_finding(rng, "Pneumonia", laterality=side, location=lobe)]
        if rng.random() < 0.55:
            found.append(_finding(rng, "Consolidation", laterality=side, location=lobe))
        elif rng.random() < 0.6:
            found.append(_finding(rng, "Lung Opacity", laterality=side, location=lobe))
        if rng.random() < 0.15:
            found.append(_finding(rng, "Pleural Effusion", laterality=side, severity=1))
        return found
    if name == "heart_failure":
        found = [_finding(rng, "Edema", laterality="bilateral", location="perihilar")]
        if rng.random() < 0.65:
            found.append(_finding(rng, "Cardiomegaly"))
        if rng.random() < 0.6:
            side = _pick(rng, ("bilateral", "right", "left"), (0.7, 0.2, 0.1))
            found.append(_finding(rng, "Pleural Effusion", laterality=side))
        if rng.random() < 0.1:
            found.append(_finding(rng, "Enlarged Cardiomediastinum"))
        if rng.random() < 0.2:
            found.append(_finding(rng, "Atelectasis", laterality="bilateral", location="base"))
        return found
    if name == "atelectasis":
        side = _side_or_both(rng, 0.35)
        found = [_finding(rng, "Atelectasis", laterality=side, location="base")]
        if rng.random() < 0.35:
            found.append(_finding(rng, "Pleural Effusion", laterality=side))
        return found
    if name == "effusion":
        side = _side_or_both(rng, 0.3)
        found = [_finding(rng, "Pleural Effusion", laterality=side)]
        if rng.random() < 0.25:
            found.append(_finding(rng, "Atelectasis", laterality=side, location="base"))
        return found
    if name == "opacity":
        if rng.random() < 0.3:
            found = [_finding(rng, "Lung Opacity", laterality="bilateral", location="lower lungs")]
        else:
            side, lobe = _lobe(rng)
            found = [_finding(rng, "Lung Opacity", laterality=side, location=lobe)]
        if found[0].laterality != "bilateral" and rng.random() < 0.25:
            found.append(Finding("Pneumonia", presence="uncertain", laterality=found[0].laterality,
                                 location=found[0].location, drawn=False))
        return found
    if name == "pneumothorax":
        side = _pick(rng, SIDES)
        found = [_finding(rng, "Pneumothorax", laterality=side, location="apex")]
        if ward != "outpatient" and rng.random() < 0.4:
            found.append(_device("chest_tube", rng, side))
        if rng.random() < 0.15:
            found.append(_fracture(rng, "acute", side))
        return found
    if name == "trauma":
        found = [_fracture(rng, "acute")]
        if rng.random() < 0.25:
            found.append(_finding(rng, "Pneumothorax", laterality=found[0].laterality,
                                  location="apex"))
        return found
    return [_lesion(rng)]


def _evolve(rng: np.random.Generator, findings: list[Finding]) -> list[Finding]:
    """The same episode one study later: severities drift, some findings resolve."""
    out = []
    for f in findings:
        if f.observation == "Support Devices" or rng.random() < 0.15:
            continue
        if f.observation in SEVERITY_WORDS and f.presence == "positive":
            f = replace(f, severity=int(np.clip(f.severity + rng.choice((-1, 0, 0, 1)), 1, 3)))
        out.append(f)
    return out


def _merge(findings: list[Finding]) -> tuple[Finding, ...]:
    """One entity per observation (several devices allowed); positive beats uncertain."""
    merged: dict[tuple, Finding] = {}
    for f in findings:
        key = f.key()
        old = merged.get(key)
        if old is None:
            merged[key] = f
            continue
        if old.presence == "uncertain" and f.presence == "positive":
            old, f = f, old
        side = old.laterality
        if f.laterality != side and f.observation in ("Pleural Effusion", "Atelectasis"):
            side = "bilateral"
        severity = max(old.severity, f.severity) if old.presence == f.presence else old.severity
        merged[key] = replace(old, laterality=side, severity=severity)
    order = {name: i for i, name in enumerate(FINDINGS)}
    return tuple(sorted(merged.values(), key=lambda f: (order[f.observation], f.kind or "")))


def _views(rng: np.random.Generator, ward: str) -> tuple[str, ...]:
    if ward == "icu" or (ward == "inpatient" and rng.random() < 0.5):
        return ("AP",) if rng.random() < 0.92 else ("AP", "LATERAL")
    return ("PA", "LATERAL") if rng.random() < 0.88 else ("PA",)


def _patient_studies(rng: np.random.Generator, ids: _Ids, patient: int, ward: str,
                     count: int, first_index: int) -> list[Study]:
    sex = _pick(rng, ("F", "M"))
    age = int(rng.integers(20, 92))
    chronic = _chronic(rng, ward)
    kit = [kind for kind, p in _ICU_DEVICES.items() if ward == "icu" and rng.random() < p]
    if ward == "inpatient" and rng.random() < 0.15:
        kit.append("picc")
    subject = ids.subject()
    day = int(rng.integers(0, 90 * 365))
    episode: list[Finding] = []
    syndrome = None
    studies: list[Study] = []
    for j in range(count):
        if episode and rng.random() < _EPISODE_CONTINUE[ward]:
            episode = _evolve(rng, episode)
        elif rng.random() < _EPISODE_START[ward]:
            syndrome = _pick(rng, _SYNDROMES, _SYNDROME_W[ward])
            episode = _syndrome(rng, syndrome, ward)
        else:
            episode, syndrome = [], None
        devices = [_device(k, rng) for k in kit if rng.random() < _DEVICE_KEPT]
        findings = _merge(chronic + episode + devices)
        views = _views(rng, ward)
        day += int(rng.integers(1, 4)) if ward == "icu" else int(rng.integers(2, 400))
        date = np.datetime64("2110-01-01") + np.timedelta64(day, "D")
        seconds = rng.uniform(0, 86400)
        clock = f"{int(seconds // 3600):02d}{int(seconds % 3600 // 60):02d}{seconds % 60:06.3f}"
        studies.append(Study(
            index=first_index + j, patient=patient, subject_id=subject, study_id=ids.study(),
            ward=ward, sex=sex, age=min(age + day // 365, 99),
            date=str(date).replace("-", ""), time=clock, views=views,
            dicom_ids=tuple(ids.dicom() for _ in views), findings=findings,
            prior=first_index + j - 1 if j else None,
            syndrome=syndrome if episode else None,
        ))
    return studies


def _assign_splits(rng: np.random.Generator, studies: list[Study], patients: int) -> None:
    """Train/validate/test by patient (80/10/10; at least one patient each when possible)."""
    order = rng.permutation(patients)
    n_val = max(1, round(0.1 * patients)) if patients >= 3 else 0
    n_test = max(1, round(0.1 * patients)) if patients >= 3 else 0
    split_of = {}
    for rank, patient in enumerate(order):
        split_of[int(patient)] = (
            "validate" if rank < n_val else "test" if rank < n_val + n_test else "train"
        )
    for study in studies:
        study.split = split_of[study.patient]


def sample_corpus(studies: int, seed: int, extra_normal: int = 0) -> list[Study]:
    """The truth of a corpus: ``studies`` clinical studies plus ``extra_normal`` normal ones.

    Deterministic in ``seed``. Patients are sampled until ``studies`` studies exist (the last
    patient is cut short). Extra normal studies (the paper's Table 3 experiment) come from new
    patients, one PA image each, all in the training split.
    """
    if studies < 1 or extra_normal < 0:
        raise ValueError("studies must be >= 1 and extra_normal >= 0")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    ids = _Ids(np.random.default_rng(np.random.SeedSequence([seed, 2])))
    out: list[Study] = []
    patient = 0
    while len(out) < studies:
        ward = _pick(rng, WARDS, _WARD_P)
        count = min(int(rng.geometric(_STUDIES_P[ward])), _MAX_STUDIES, studies - len(out))
        out.extend(_patient_studies(rng, ids, patient, ward, count, len(out)))
        patient += 1
    _assign_splits(rng, out, patient)
    for k in range(extra_normal):
        day = int(rng.integers(0, 90 * 365))
        date = np.datetime64("2110-01-01") + np.timedelta64(day, "D")
        out.append(Study(
            index=len(out), patient=patient + k, subject_id=ids.subject(), study_id=ids.study(),
            ward="outpatient", sex=_pick(rng, ("F", "M")), age=int(rng.integers(20, 90)),
            date=str(date).replace("-", ""), time="120000.000", views=("PA",),
            dicom_ids=(ids.dicom(),), findings=(), split="train", extra_normal=True,
        ))
    return out
