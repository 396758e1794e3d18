"""Help > Documentation (the README rendered) and Help > About (with the installed version)."""

from __future__ import annotations

import logging
from importlib import metadata

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from app.services.project import DISTRIBUTION, resources_dir

log = logging.getLogger(__name__)


def app_version() -> str:
    """The installed distribution's version ('unknown' when run from a checkout that is not installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def documentation_markdown() -> str:
    """The README: the checkout's file, else the installed distribution's long description."""
    readme = resources_dir().parent / "README.md"
    try:
        return readme.read_text(encoding="utf-8")
    except OSError:
        pass
    try:
        body = metadata.metadata(DISTRIBUTION).get_payload()  # type: ignore[attr-defined]
        if body:
            return str(body)
    except metadata.PackageNotFoundError:
        pass
    return "# Soundscape Mapper\n\nThe documentation (README.md) was not found in this installation."


class DocumentationDialog(QDialog):
    """The README in a browser pane (links open outside the app)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Soundscape Mapper documentation")
        self.resize(820, 640)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        readme = resources_dir().parent / "README.md"
        self.browser.setSearchPaths([str(readme.parent)])  # the README's images (docs/*.png)
        self.browser.setMarkdown(documentation_markdown())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)


def about_text() -> str:
    return (f"<b>Soundscape Mapper</b> {app_version()}<br>What does this place sound like? Where could this "
            "sound have been recorded?<br><br>One embedding space for aerial imagery and field recordings "
            "(audiovisual self-supervised learning as in SoundingEarth).<br><br>Help > Documentation has the "
            "user guide.")


def show_about(parent: QWidget) -> None:
    QMessageBox.about(parent, "About Soundscape Mapper", about_text())


__all__ = ["DocumentationDialog", "about_text", "app_version", "show_about"]
