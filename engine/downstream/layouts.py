"""The official on-disk layouts of the scene-classification datasets and of ADVANCE, as distributed.

- UC Merced Land Use: ``UCMerced_LandUse/Images/<class>/<class>NN.tif`` (21 classes, 100 images of
  256 px each).
- AID: ``AID/<Class>/<class>_N.jpg`` (30 classes, 220-420 images of 600 px each).
- NWPU-RESISC45: ``NWPU-RESISC45/<class>/<class>_NNN.jpg`` (45 classes, 700 images of 256 px each).
- ADVANCE: ``vision/<class>/<name>.jpg`` beside ``sound/<class>/<name>.wav`` (13 classes).

``--root`` may name the dataset folder itself, the folder holding the class folders, or the folder
that holds the dataset folder. A root that is another known dataset is refused by name. Torch-free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DatasetError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class SceneDatasetSpec:
    """One folder-per-class scene dataset: its class folders and where they sit under a root."""

    key: str
    title: str
    classes: tuple[str, ...]
    subfolders: tuple[str, ...]  # candidate paths (relative to --root) of the folder of class folders
    native_size: int
    example: str  # an example file path, for messages


UCMERCED = SceneDatasetSpec(
    key="ucmerced", title="UC Merced Land Use",
    classes=("agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral",
             "denseresidential", "forest", "freeway", "golfcourse", "harbor", "intersection",
             "mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway",
             "sparseresidential", "storagetanks", "tenniscourt"),
    subfolders=("", "Images", "UCMerced_LandUse/Images"), native_size=256,
    example="UCMerced_LandUse/Images/agricultural/agricultural00.tif")

AID = SceneDatasetSpec(
    key="aid", title="AID",
    classes=("Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
             "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow", "MediumResidential",
             "Mountain", "Park", "Parking", "Playground", "Pond", "Port", "RailwayStation", "Resort", "River",
             "School", "SparseResidential", "Square", "Stadium", "StorageTanks", "Viaduct"),
    subfolders=("", "AID"), native_size=600, example="AID/Airport/airport_1.jpg")

RESISC45 = SceneDatasetSpec(
    key="resisc45", title="NWPU-RESISC45",
    classes=("airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge", "chaparral",
             "church", "circular_farmland", "cloud", "commercial_area", "dense_residential", "desert",
             "forest", "freeway", "golf_course", "ground_track_field", "harbor", "industrial_area",
             "intersection", "island", "lake", "meadow", "medium_residential", "mobile_home_park",
             "mountain", "overpass", "palace", "parking_lot", "railway", "railway_station",
             "rectangular_farmland", "river", "roundabout", "runway", "sea_ice", "ship", "snowberg",
             "sparse_residential", "stadium", "storage_tank", "tennis_court", "terrace",
             "thermal_power_station", "wetland"),
    subfolders=("", "NWPU-RESISC45"), native_size=256, example="NWPU-RESISC45/airplane/airplane_001.jpg")

SCENE_DATASETS: dict[str, SceneDatasetSpec] = {s.key: s for s in (UCMERCED, AID, RESISC45)}


@dataclass(frozen=True)
class SceneSamples:
    """The images of a scene dataset: parallel lists, in class order then file-name order."""

    spec: SceneDatasetSpec
    folder: Path  # the folder holding the class folders
    paths: list[Path]
    labels: list[int]

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)


def _subdirs(folder: Path) -> dict[str, Path]:
    """Sub-folders keyed by lower-cased name (class folders are matched case-insensitively)."""
    if not folder.is_dir():
        return {}
    return {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}


def _candidate_folders(root: Path, spec: SceneDatasetSpec) -> list[Path]:
    return [root / sub if sub else root for sub in spec.subfolders]


def _best_folder(root: Path, spec: SceneDatasetSpec) -> tuple[Path | None, int]:
    """The candidate folder holding the most of ``spec``'s class folders, and how many it holds."""
    best, best_count = None, 0
    for folder in _candidate_folders(root, spec):
        names = _subdirs(folder)
        count = sum(c.lower() in names for c in spec.classes)
        if count > best_count:
            best, best_count = folder, count
    return best, best_count


def identify_dataset(root: Path) -> str | None:
    """The title of the known dataset (scene datasets, ADVANCE, DeepGlobe) found at ``root``, or None."""
    for spec in SCENE_DATASETS.values():
        if _best_folder(root, spec)[1] == len(spec.classes):
            return spec.title
    if (root / "vision").is_dir() and (root / "sound").is_dir():
        return "ADVANCE"
    for folder in (root, root / "train"):
        if folder.is_dir() and next(folder.glob("*_sat.jpg"), None) is not None:
            return "DeepGlobe Land Cover"
    return None


def refuse_other_dataset(root: Path, wanted: str, expected: str) -> None:
    """Raise a :class:`DatasetError` saying what ``root`` is instead (or what was expected there)."""
    other = identify_dataset(root)
    if other is not None and other != wanted:
        raise DatasetError(root, f"is {other}, not {wanted}",
                           "pass the matching --dataset/sub-command, or point --root at the " + wanted + " folder")
    raise DatasetError(root, f"no {wanted} data found (expected {expected})",
                       "point --root at the dataset as distributed")


def list_scene_dataset(root: str | Path, dataset: str) -> SceneSamples:
    """Find a scene dataset under ``root`` and list its images.

    Args:
        root: the dataset folder, the folder of class folders, or their parent.
        dataset: ``ucmerced``, ``aid`` or ``resisc45``.

    Returns:
        :class:`SceneSamples`, images sorted by class (official class order) then by file name, the
        order torchvision's ``ImageFolder`` gives (the paper's authors split on it).

    Raises:
        DatasetError: the root is missing, is another dataset, or lacks class folders or images.
    """
    spec = SCENE_DATASETS[dataset]
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder not found", "check --root")
    folder, found = _best_folder(root, spec)
    if folder is None:
        refuse_other_dataset(root, spec.title, f"class folders such as {spec.example}")
    names = _subdirs(folder)
    missing = [c for c in spec.classes if c.lower() not in names]
    if missing:
        other = identify_dataset(root)
        if other is not None and other != spec.title:
            refuse_other_dataset(root, spec.title, spec.example)
        raise DatasetError(folder / missing[0], f"class folder missing ({len(missing)} of {len(spec.classes)} "
                           f"missing: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})",
                           f"restore the {spec.title} folders as distributed")
    extra = sorted(set(names) - {c.lower() for c in spec.classes})
    if extra:
        log.warning("%s: ignoring folders that are not %s classes: %s", folder, spec.title, ", ".join(extra[:5]))
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(spec.classes):
        class_dir = names[name.lower()]
        files = sorted(p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(class_dir, "class folder holds no images", f"restore it (e.g. {spec.example})")
        paths += files
        labels += [index] * len(files)
    log.info("%s: %d images in %d classes at %s", spec.title, len(paths), len(spec.classes), folder)
    return SceneSamples(spec, folder, paths, labels)


@dataclass(frozen=True)
class AdvanceSamples:
    """ADVANCE image/sound pairs, in class order then name order."""

    root: Path
    classes: list[str]
    images: list[Path]
    sounds: list[Path]
    labels: list[int]
    unpaired: list[str]  # images without a sound (or sounds without an image), skipped


ADVANCE_CLASS_COUNT = 13
SOUND_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def list_advance(root: str | Path) -> AdvanceSamples:
    """List ADVANCE pairs: ``vision/<class>/<name>.jpg`` with ``sound/<class>/<name>.wav``.

    Unpaired files are skipped and counted (a warning names them). Raises :class:`DatasetError` when
    the root is not ADVANCE, a class folder of ``vision/`` has no twin in ``sound/`` (or the other
    way round), or no pair is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder not found", "check --root")
    vision, sound = root / "vision", root / "sound"
    if not (vision.is_dir() and sound.is_dir()):
        refuse_other_dataset(root, "ADVANCE", "vision/<class>/*.jpg and sound/<class>/*.wav")
    vision_classes, sound_classes = _subdirs(vision), _subdirs(sound)
    for name in sorted(set(vision_classes) ^ set(sound_classes)):
        side = sound if name in vision_classes else vision
        twin = (vision_classes.get(name) or sound_classes.get(name)).name
        raise DatasetError(side / twin, "class folder missing", "restore both vision/ and sound/ as distributed")
    classes = sorted(vision_classes[name].name for name in vision_classes)
    if not classes:
        raise DatasetError(vision, "holds no class folders", "restore ADVANCE as distributed")
    if len(classes) != ADVANCE_CLASS_COUNT:
        log.warning("%s: %d classes found, ADVANCE has %d", root, len(classes), ADVANCE_CLASS_COUNT)
    images: list[Path] = []
    sounds: list[Path] = []
    labels: list[int] = []
    unpaired: list[str] = []
    for index, name in enumerate(classes):
        img_dir, snd_dir = vision_classes[name.lower()], sound_classes[name.lower()]
        snd_by_stem = {p.stem: p for p in snd_dir.iterdir() if p.suffix.lower() in SOUND_SUFFIXES}
        img_stems = set()
        for img in sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            img_stems.add(img.stem)
            if img.stem in snd_by_stem:
                images.append(img)
                sounds.append(snd_by_stem[img.stem])
                labels.append(index)
            else:
                unpaired.append(str(img))
        unpaired += [str(p) for stem, p in sorted(snd_by_stem.items()) if stem not in img_stems]
    if unpaired:
        log.warning("ADVANCE: skipping %d unpaired file(s), e.g. %s", len(unpaired), unpaired[0])
    if not images:
        raise DatasetError(root, "no image/sound pairs found", "each vision/<class>/X.jpg needs sound/<class>/X.wav")
    return AdvanceSamples(root, classes, images, sounds, labels, unpaired)
