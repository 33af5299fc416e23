"""The run report of a real local run of tabular_classifier, opened in Debian's headless Chromium.

One small run (breast cancer data, two epochs, one worker; a gate it cannot pass, so nothing is
deployed) writes report.html; the browser must show every task of the graph with its state, every
plot the tasks drew (loaded, with alt text), the data validation report inside its sandboxed frame,
the ROC chart's text alternative, all at laptop width, with nothing blocked by the page's policy.
The screenshots are the test's artifacts, in its tmp folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chromium import BROWSER_MARKS, LAPTOP_WIDTH, chromium, console_errors, screenshot
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from kubeforge.local_runner import run_pipeline_locally
from kubeforge.pipelines.tabular_classifier.pipeline import tabular_classifier

pytestmark = BROWSER_MARKS
TASKS = ["import-data", "validate-data", "preprocess-tabular", "train-pytorch", "evaluate-classifier", "deploy-model"]
PLOTS = {"training_curve.png", "confusion_matrix.png", "roc_curve.png"}


def test_run_report_of_tabular_classifier_in_chromium(
    breast_cancer_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    params = {"data_uri": str(breast_cancer_csv), "epochs": 2, "workers": 1, "thresholds": '{"log_loss": 0.0001}'}
    run = run_pipeline_locally(tabular_classifier, params, tmp_path / "root")
    report = run.run_dir / "report.html"
    assert report.is_file()

    with chromium() as driver:
        driver.get(report.as_uri())
        assert driver.title == "tabular-classifier run report: succeeded"
        rows = driver.find_elements(By.CSS_SELECTOR, "table.tasks tbody tr")
        states = {
            row.find_element(By.TAG_NAME, "th").text: row.find_elements(By.TAG_NAME, "td")[0].text for row in rows
        }
        assert states == {
            "import-data": "imported",
            "validate-data": "ran",
            "preprocess-tabular": "ran",
            "train-pytorch": "ran",
            "evaluate-classifier": "ran",
            "deploy-model": "skipped",  # the gate failed, as asked
        }
        graph_labels = [
            link.get_attribute("aria-label") or "" for link in driver.find_elements(By.CSS_SELECTOR, "svg.graph a")
        ]
        assert [label.split(":")[0].split(" (in ")[0] for label in graph_labels] == TASKS
        targets = [
            link.get_dom_attribute("href") or "" for link in driver.find_elements(By.CSS_SELECTOR, "svg.graph a")
        ]
        sections = [driver.find_element(By.ID, target.rsplit("#", 1)[1]) for target in targets]
        assert [section.find_element(By.TAG_NAME, "h3").text.split()[0] for section in sections] == TASKS
        screenshot(driver, tmp_path, "run-report-top")

        images = driver.find_elements(By.CSS_SELECTOR, "main img")
        shown = {
            image.find_element(By.XPATH, "..").find_element(By.TAG_NAME, "figcaption").text.split("/")[-1]
            for image in images
        }
        assert shown >= PLOTS, shown
        for image in images:
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)
            assert image.get_attribute("alt")
        roc = driver.find_element(By.CSS_SELECTOR, "figure.roc svg")
        assert roc.get_attribute("role") == "img" and "area under the curve" in (roc.get_attribute("aria-label") or "")
        assert driver.find_element(By.CSS_SELECTOR, "table.confusion").is_displayed()

        frame = driver.find_element(By.CSS_SELECTOR, "#task-validate-data iframe.html-artifact")
        assert frame.get_attribute("sandbox") == ""
        driver.switch_to.frame(frame)
        assert driver.find_element(By.TAG_NAME, "h1").text == "Data validation: PASSED"
        driver.switch_to.default_content()

        # keyboard: the first Tab reaches the skip link, which jumps to the tasks
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        assert driver.switch_to.active_element.text == "Skip to the tasks"
        # laptop width: the page does not scroll sideways; the policy blocked nothing
        assert driver.execute_script("return document.documentElement.scrollWidth") <= LAPTOP_WIDTH
        assert console_errors(driver) == []
        driver.find_element(By.ID, "task-evaluate-classifier").location_once_scrolled_into_view  # noqa: B018
        screenshot(driver, tmp_path, "run-report-evaluation")
