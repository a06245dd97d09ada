"""A person's journey in a real browser (Debian's Chromium), through the public route and TLS:
log in to Galaxy's UI, open the notebook tool from the tool panel and run it with the default
form, open the session from Galaxy's interactive-tools list (the link Galaxy shows), see
JupyterLab render inside Galaxy's page on the bundled home notebook, run its first code cell,
save a file into outputs/, shut the session down from JupyterLab's File menu and see the file
arrive in the Galaxy history.

Screenshots of every step: .deploy-local/test-results/browser/ (tests/support/browser.py)."""

from __future__ import annotations

import re
import secrets
import uuid

import pytest
from bioblend.galaxy import GalaxyInstance

from tests.conftest import REPO
from tests.support import browser, galaxy_it

pytestmark = pytest.mark.e2e

SHOTS = REPO / ".deploy-local" / "test-results" / "browser"
TOOL_SECTION = "Interactive tools"
WAIT = 60  # seconds any one thing on a page may take to appear
SESSION_WAIT = 240  # seconds from Run Tool to the session's link (image start, Slurm, proxy)


SESSION_FRAME = "iframe[src*='.ep.'], iframe[src*='/ep/']"


def jupyterlab_in_the_session_frame(driver):
    """Into the frame Galaxy shows the session in, once JupyterLab is there. The frame may first
    show the "session is starting" page, which reloads itself: its document is looked up anew."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    frames = driver.find_elements(By.CSS_SELECTOR, SESSION_FRAME)
    if not frames:
        return False
    driver.switch_to.frame(frames[0])
    text = driver.find_element(By.TAG_NAME, "body").text
    assert "Proxy target missing" not in text, "the session's frame shows gx-it-proxy's bare error, not a page"
    return bool(driver.find_elements(By.ID, "jp-main-dock-panel"))


@pytest.fixture(scope="module")
def person():
    """A new user with a password, a member of the GPU users' group."""
    endpoints = galaxy_it.load_endpoints()
    password = secrets.token_urlsafe(12)
    email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"], password=password)
    yield endpoints, email, password
    # a journey that stopped half-way leaves its session running: end it (it holds a job slot)
    gi = GalaxyInstance(endpoints["galaxy_url"], key=key)
    for job in gi.jobs.get_jobs(state="running") + gi.jobs.get_jobs(state="queued"):
        gi.jobs.cancel_job(job["id"])


@pytest.fixture(scope="module")
def chromium(person):
    if reason := browser.missing():
        pytest.fail(reason)  # the test command installs it: a missing browser is a broken setup
    endpoints = person[0]
    driver = browser.chromium(endpoints["galaxy_url"], endpoints.get("ca_certificate"))
    yield driver
    driver.quit()


def test_a_person_runs_the_notebook_from_galaxys_ui_and_gets_a_file_back(person, chromium):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    endpoints, email, password = person
    driver, wait = chromium, WebDriverWait(chromium, WAIT)
    journey = browser.Journey(driver, SHOTS)
    marker = uuid.uuid4().hex[:12]
    file_name = f"journey-{marker}.txt"

    def click(locator, within=wait):
        within.until(EC.element_to_be_clickable(locator)).click()

    with journey.step("log in"):
        driver.get(endpoints["galaxy_url"] + "/login/start")
        wait.until(EC.element_to_be_clickable((By.ID, "login-form-name"))).send_keys(email)
        driver.find_element(By.ID, "login-form-password").send_keys(password)
        click((By.CSS_SELECTOR, "button[name=login]"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "masthead"), email.split("@")[0]))

    with journey.step("open the notebook tool from the tool panel"):
        click((By.XPATH, f"//*[normalize-space()='{TOOL_SECTION}']"))
        click((By.CSS_SELECTOR, f"a.tool-link[data-tool-id='{galaxy_it.NOTEBOOK_TOOL_ID}']"))
        wait.until(EC.element_to_be_clickable((By.ID, "execute")))

    with journey.step("run it with the default form"):
        click((By.ID, "execute"))
        wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "successfully added 1 job to the queue"))

    with journey.step("open the session from the interactive-tools list"):
        click((By.ID, "activity-interactivetools"))
        session_link = (By.CSS_SELECTOR, "a.tool-link[href*='.ep.'], a.tool-link[href*='/ep/']")
        click(session_link, WebDriverWait(driver, SESSION_WAIT, poll_frequency=1))
        # Galaxy shows the session inside its own page
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, SESSION_FRAME)))

    with journey.step("JupyterLab renders, on the home notebook"):
        reloading = (NoSuchElementException, StaleElementReferenceException)  # the frame reloads itself
        WebDriverWait(driver, SESSION_WAIT, poll_frequency=1, ignored_exceptions=reloading).until(
            jupyterlab_in_the_session_frame
        )
        tab = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".jp-mod-current .lm-TabBar-tabLabel")))
        assert tab.text == "home.ipynb", f"the session opened on {tab.text!r}, not the home notebook"
        wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell")))
        errors = [d.text for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog") if d.is_displayed()]
        assert not errors, f"JupyterLab shows a dialog: {errors}"
        toasts = [t.text for t in driver.find_elements(By.CSS_SELECTOR, ".Toastify__toast") if t.is_displayed()]
        assert not any("news" in t.lower() for t in toasts), f"JupyterLab asks about news: {toasts}"

    with journey.step("run the first code cell and see its output"):
        # as a person waits for the kernel indicator: the status bar says "<kernel> | Idle"
        WebDriverWait(driver, 120).until(EC.text_to_be_present_in_element((By.ID, "jp-main-statusbar"), "| Idle"))
        first = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell")))
        first.find_element(By.CSS_SELECTOR, ".cm-content").click()
        first.find_element(By.CSS_SELECTOR, ".cm-content").send_keys(Keys.SHIFT, Keys.ENTER)
        output = WebDriverWait(driver, 120).until(
            lambda d: (first.find_element(By.CSS_SELECTOR, ".jp-OutputArea").text or "").strip() or False
        )
        assert "GPU" in output, output  # the cell says which GPU it sees, or that it runs on the CPU

    with journey.step("save a file into outputs/"):
        # the kernel runs in notebooks/; outputs/ sits beside it, at the file browser's root
        code = f"import pathlib; pathlib.Path('../outputs/{file_name}').write_text('{marker}')"
        # a new cell at the end of the notebook, typed and run
        driver.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Notebook").click()
        cells = driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")
        cells[-1].click()
        cells[-1].send_keys(Keys.ESCAPE, "b")
        new_cell = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")[len(cells)])
        editor = new_cell.find_element(By.CSS_SELECTOR, ".cm-content")
        editor.click()
        editor.send_keys(code)
        editor.send_keys(Keys.SHIFT, Keys.ENTER)
        prompt = new_cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt")
        wait.until(lambda d: re.fullmatch(r"\[\d+\]:", prompt.text.strip()))  # [n]: once it ran
        assert not new_cell.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.stderr']"), (
            new_cell.text
        )

    with journey.step("shut the session down from the File menu"):
        click((By.XPATH, "//li[contains(@class,'lm-MenuBar-item')][normalize-space()='File']"))
        click((By.CSS_SELECTOR, "li.lm-Menu-item[data-command='filemenu:shutdown']"))
        click((By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"))
        driver.switch_to.default_content()

    with journey.step("see the file in the Galaxy history"):
        WebDriverWait(driver, 180, poll_frequency=2).until(
            # the dataset is named after the file, its extension becomes the datatype
            EC.text_to_be_present_in_element((By.ID, "current-history-panel"), file_name.removesuffix(".txt"))
        )
    journey.write_summary()
