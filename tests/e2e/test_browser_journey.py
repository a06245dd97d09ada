"""A person's journey in a real browser (Debian's Chromium), through the public route and TLS:
log in to Galaxy's UI, open the notebook tool from the tool panel and run it with the default
form, open the session from Galaxy's interactive-tools list (the link Galaxy shows), see
JupyterLab render inside Galaxy's page on the bundled home notebook, with the room of Galaxy's
centre panel and only launcher tiles that work, run its first code cell, read in the status bar
whether the session has a GPU, send a remote training with run_script_job and watch its
progress bars fill, save a file into outputs/, shut the session down from JupyterLab's File menu
and see the file arrive in the Galaxy history. And the journey of a person outside the group
that may run the tool: the history says why the job stopped and whom to ask.

Screenshots of every step: .deploy-local/test-results/browser/<journey>/ (tests/support/browser.py)."""

from __future__ import annotations

import re
import secrets
import uuid

import pytest
from bioblend.galaxy import GalaxyInstance

from tests.conftest import REPO
from tests.support import browser, galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

SHOTS = REPO / ".deploy-local" / "test-results" / "browser"
TOOL_SECTION = "Interactive tools"
WAIT = 60  # seconds any one thing on a page may take to appear
SESSION_WAIT = 240  # seconds from Run Tool to the session's link (image start, Slurm, proxy)


# Galaxy's links to a session, and the frame it shows one in: subdomain (.ep.) or path (/ep/) routing
SESSION_URL_PARTS = (".ep.", "/ep/")
SESSION_FRAME = ", ".join(f"iframe[src*='{part}']" for part in SESSION_URL_PARTS)
SESSION_LINK = ", ".join(f"a.tool-link[href*='{part}']" for part in SESSION_URL_PARTS)
# Launcher tiles that cannot work in this service (no Airflow, Kubeflow, R or Scala here)
UNUSABLE_TILES = ("R Editor", "Scala Editor", "Kubeflow", "Airflow")
# The share of the session's frame the notebook gets (the rest: JupyterLab's side tab bars)
ROOMY_SHARE = 0.85
# A remote training small enough for the journey: three "epochs" on the job node
TRAINING_SCRIPT = "import time\nfor epoch in range(3):\n    time.sleep(2)\n    print('epoch', epoch)\n"


def jupyterlab_in_the_session_frame(driver):
    """Into the frame Galaxy shows the session in, once JupyterLab is there. The frame may first
    show the "session is starting" page, which reloads itself: its document is looked up anew."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    frames = driver.find_elements(By.CSS_SELECTOR, SESSION_FRAME)
    if not frames:
        return False
    driver.switch_to.frame(frames[0])
    if "ERR_NETWORK_CHANGED" in driver.page_source:
        # Chromium abandons a page when the machine's network interfaces change, as they do here
        # whenever a test machine's Docker engine starts or removes a container: a person reloads
        # (the frame loads its address again).
        driver.switch_to.default_content()
        driver.execute_script("arguments[0].src = arguments[0].src", frames[0])
        return False
    text = driver.find_element(By.TAG_NAME, "body").text
    assert "Proxy target missing" not in text, "the session's frame shows gx-it-proxy's bare error, not a page"
    return bool(driver.find_elements(By.ID, "jp-main-dock-panel"))


def log_in(driver, wait, galaxy_url: str, email: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    driver.get(galaxy_url + "/login/start")
    wait.until(EC.element_to_be_clickable((By.ID, "login-form-name"))).send_keys(email)
    driver.find_element(By.ID, "login-form-password").send_keys(password)
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "button[name=login]"))).click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "masthead"), email.split("@")[0]))


def run_the_notebook_tool_with_the_default_form(driver, wait) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    wait.until(EC.element_to_be_clickable((By.XPATH, f"//*[normalize-space()='{TOOL_SECTION}']"))).click()
    tool_link = (By.CSS_SELECTOR, f"a.tool-link[data-tool-id='{galaxy_it.NOTEBOOK_TOOL_ID}']")
    wait.until(EC.element_to_be_clickable(tool_link)).click()
    wait.until(EC.element_to_be_clickable((By.ID, "execute"))).click()
    wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "successfully added 1 job to the queue"))


@pytest.fixture(scope="module")
def endpoints():
    return galaxy_it.load_endpoints()


@pytest.fixture(scope="module")
def chromium(endpoints):
    if reason := browser.missing():
        pytest.fail(reason)  # the test command installs it: a missing browser is a broken setup
    driver = browser.chromium(endpoints["galaxy_url"], endpoints.get("ca_certificate"))
    yield driver
    driver.quit()


@pytest.fixture
def person(endpoints, chromium):
    """A new user with a password, a member of the group that may run the tools; logged out after."""
    yield from new_person(endpoints, chromium, member=True)


@pytest.fixture
def outsider(endpoints, chromium):
    yield from new_person(endpoints, chromium, member=False)


def new_person(endpoints, driver, member: bool):
    """A new user with a password (in the group that may run the tools or not); logged out after."""
    password = secrets.token_urlsafe(12)
    email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"], gpu_user=member,
                                       password=password)  # fmt: skip
    yield email, password
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})  # every site's: the next journey logs in anew
    # a journey that stopped half-way leaves its jobs running: end them (they hold job slots)
    gi = GalaxyInstance(endpoints["galaxy_url"], key=key)
    for job in gi.jobs.get_jobs(state="running") + gi.jobs.get_jobs(state="queued"):
        gi.jobs.cancel_job(job["id"])


def test_a_person_runs_the_notebook_from_galaxys_ui_and_gets_a_file_back(endpoints, person, chromium):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    email, password = person
    driver, wait = chromium, WebDriverWait(chromium, WAIT)
    journey = browser.Journey(driver, SHOTS / "member")
    marker = uuid.uuid4().hex[:12]
    file_name = f"journey-{marker}.txt"

    def click(locator, within=wait):
        within.until(EC.element_to_be_clickable(locator)).click()

    def cells():
        return driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")

    def run_in_a_new_cell(code: str):
        """Add a cell at the end of the notebook, type the code and run it; returns the cell."""
        before = cells()
        before[-1].click()
        before[-1].send_keys(Keys.ESCAPE, "b")
        new_cell = wait.until(lambda d: cells()[len(before)] if len(cells()) > len(before) else False)
        editor = new_cell.find_element(By.CSS_SELECTOR, ".cm-content")
        editor.click()
        editor.send_keys(code)
        editor.send_keys(Keys.SHIFT, Keys.ENTER)
        return new_cell

    def ran(cell, timeout: float = WAIT) -> None:
        """Wait until the cell's prompt shows its execution count, then check it wrote no error."""
        prompt = cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt")
        WebDriverWait(driver, timeout).until(lambda d: re.fullmatch(r"\[\d+\]:", prompt.text.strip()))
        errors = cell.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.stderr'] pre")
        assert not [e.text for e in errors if "Traceback" in e.text or "Error" in e.text], cell.text

    def gpu_status_in_sight():
        """The status bar's GPU item is not cut off at the frame's edge (the items before it grow:
        the language server's state, the memory in use)."""
        item = driver.find_element(By.ID, "gxnb-accelerator-status")
        frame_width = driver.execute_script("return window.innerWidth")
        end = item.rect["x"] + item.rect["width"]
        assert end <= frame_width, f"the GPU status ends at {end:.0f} px, cut off by a {frame_width} px frame"

    with journey.step("log in"):
        log_in(driver, wait, endpoints["galaxy_url"], email, password)

    with journey.step("the welcome page says what the service offers and links its tools"):
        welcome = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "iframe[src*='welcome']")))
        driver.switch_to.frame(welcome)
        heading = wait.until(EC.presence_of_element_located((By.TAG_NAME, "h1"))).text
        assert heading and "Galaxy is running" not in heading, heading  # not Galaxy's stock page
        links = driver.find_elements(By.CSS_SELECTOR, "a.tool")
        tools = [link.get_attribute("href").split("tool_id=", 1)[1] for link in links]
        assert sorted(tools) == sorted([galaxy_it.NOTEBOOK_TOOL_ID, galaxy_it.TRAINING_TOOL_ID]), tools
        driver.switch_to.default_content()

    with journey.step("open the notebook tool from the tool panel and run it with the default form"):
        run_the_notebook_tool_with_the_default_form(driver, wait)

    with journey.step("open the session from the interactive-tools list"):
        click((By.ID, "activity-interactivetools"))
        click((By.CSS_SELECTOR, SESSION_LINK), WebDriverWait(driver, SESSION_WAIT, poll_frequency=1))
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

    with journey.step("the notebook has the room of Galaxy's centre panel"):
        # Galaxy's tool panel and history leave the session's frame narrow: the file browser is
        # folded away, its tab still there to open it again
        frame_width = driver.execute_script("return window.innerWidth")
        notebook = driver.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel")
        try:
            wait.until(lambda d: notebook.rect["width"] >= ROOMY_SHARE * frame_width)
        except TimeoutException:
            pytest.fail(f"the notebook is {notebook.rect['width']:.0f} px wide in a {frame_width} px frame")
        assert driver.find_element(By.CSS_SELECTOR, ".jp-SideBar.jp-mod-left [data-id='filebrowser']").is_displayed()

    with journey.step("a new Launcher offers only tiles that work"):
        click((By.CSS_SELECTOR, "#jp-main-dock-panel .lm-TabBar-addButton"))
        wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".jp-LauncherCard")))
        tiles = [t.text.replace("\n", " ") for t in driver.find_elements(By.CSS_SELECTOR, ".jp-LauncherCard")]
        assert "Python 3 (ipykernel)" in tiles and "Generic Pipeline Editor" in tiles, tiles
        unusable = [t for t in tiles if any(name in t for name in UNUSABLE_TILES)]
        assert not unusable, f"the Launcher offers tiles that cannot work here: {unusable}"
        click((By.XPATH, "//li[contains(@class,'lm-TabBar-tab')][.//*[normalize-space()='home.ipynb']]"))
        wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell")))

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

    with journey.step("the status bar says whether the session has a GPU"):
        # what the session sees (the first cell's output), not what the cluster declares: a job
        # node's Slurm may count GPUs that the container was not given
        item = wait.until(EC.visibility_of_element_located((By.ID, "gxnb-accelerator-status")))
        wait.until(lambda d: item.get_attribute("data-gpu") in ("true", "false"))
        gpu_status_in_sight()
        if "no GPU visible" in output:
            assert item.text == "CPU only", item.text
            assert "no GPU visible, running on CPU" in item.get_attribute("title")
        if local_cluster.facts()["slurm_accounting"] == "True":
            # The user's GPU time this month (Slurm's accounting, and this session's own so far).
            assert "GPU-hours this month: " in item.get_attribute("title"), item.get_attribute("title")
        else:
            assert item.text.startswith("GPU: ") and "%" in item.text, item.text  # its name and use

    with journey.step("send a remote training and watch its progress bars fill"):
        script = f"journey_train_{marker}.py"
        cell = run_in_a_new_cell(
            f"import pathlib; pathlib.Path('{script}').write_text({TRAINING_SCRIPT!r})\n"
            f"job = run_script_job('{script}', new_history_name='journey training {marker}')"
        )
        bar = (By.CSS_SELECTOR, ".jp-OutputArea .widget-hprogress .progress-bar")  # ipywidgets 8
        seen = set()

        def wait_bar_done(d):
            bars = cell.find_elements(*bar)
            if len(bars) < 2:  # the upload's, then the job's
                return False
            if width := re.search(r"width:\s*([\d.]+)%", bars[-1].get_attribute("style") or ""):
                seen.add(round(float(width.group(1))))
            return "progress-bar-success" in (bars[-1].get_attribute("class") or "")

        WebDriverWait(driver, 300, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,)).until(
            wait_bar_done
        )
        ran(cell, timeout=60)
        text = cell.find_element(By.CSS_SELECTOR, ".jp-OutputArea").text.replace("\u2007", " ")  # tqdm's spaces
        assert re.search(r"Galaxy job \w+: ok", text), text
        upload = cell.find_elements(*bar)[0]
        assert "progress-bar-success" in upload.get_attribute("class"), text  # the script's upload finished
        assert any(0 < width < 100 for width in seen), f"the job's bar showed no stage between start and end: {seen}"
        gpu_status_in_sight()  # the status bar has settled by now

    with journey.step("save a file into outputs/"):
        # the kernel runs in notebooks/; outputs/ sits beside it, at the file browser's root
        ran(run_in_a_new_cell(f"import pathlib; pathlib.Path('../outputs/{file_name}').write_text('{marker}')"))

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


def test_a_person_outside_the_group_is_told_why_and_whom_to_ask(endpoints, outsider, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    group = local_cluster.facts()["gpu_users_group"]
    if not group:
        pytest.skip("this deployment lets everyone run the notebook")
    email, password = outsider
    driver, wait = chromium, WebDriverWait(chromium, WAIT)
    journey = browser.Journey(driver, SHOTS / "outsider")

    with journey.step("log in"):
        log_in(driver, wait, endpoints["galaxy_url"], email, password)

    with journey.step("open the notebook tool from the tool panel and run it with the default form"):
        run_the_notebook_tool_with_the_default_form(driver, wait)

    with journey.step("the history shows the job stopped, and why"):
        failed = (By.CSS_SELECTOR, "#current-history-panel .content-item[data-state='error'] .content-title")
        WebDriverWait(driver, 120, poll_frequency=1).until(EC.element_to_be_clickable(failed)).click()  # expand it
        said = WebDriverWait(driver, WAIT).until(
            lambda d: next((e.text for e in d.find_elements(By.CSS_SELECTOR, "#current-history-panel .content-item")
                            if f"Galaxy group '{group}'" in e.text), False)
        )  # fmt: skip
        assert "only members of the Galaxy group" in said and endpoints["admin_email"] in said, said
    journey.write_summary()


def test_a_script_in_a_session_cannot_set_a_cookie_that_galaxys_pages_receive(endpoints, chromium):
    """Sessions are served from a site other than Galaxy's (gxnb_sessions_hostname; locally Galaxy
    is on localhost, which has no registrable domain): a session's page sets cookies for every
    parent domain of its host, Galaxy's login cookie among them, and Galaxy's pages receive none
    of them; the person stays logged in as themself. The control: the session's own cookie works."""
    from selenium.webdriver.support.ui import WebDriverWait

    password = secrets.token_urlsafe(12)
    email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"], password=password)
    driver, wait = chromium, WebDriverWait(chromium, WAIT)
    journey = browser.Journey(driver, SHOTS / "cookie-tossing")
    galaxy_cookies = lambda: {c["name"]: c for c in driver.execute_cdp_cmd(  # noqa: E731
        "Network.getCookies", {"urls": [endpoints["galaxy_url"] + "/"]})["cookies"]}
    session = None
    try:
        with journey.step("log in to Galaxy"):
            log_in(driver, wait, endpoints["galaxy_url"], email, password)
            before = galaxy_cookies()
            assert "galaxysession" in before, before

        with journey.step("open a session of one's own"):
            session = galaxy_it.start_session(endpoints, key)
            galaxy_it.wait_for_http_200(session.url + "lab")
            driver.get(session.url + "lab")
            host = session.origin.split("://", 1)[1].split(":")[0]
            parents = [".".join(host.split(".")[i:]) for i in range(1, host.count(".") + 1)]
            assert len(parents) >= 3, parents  # ep.<prefix>.<name> and up

        with journey.step("a script in the session sets cookies for every parent domain, Galaxy's login among them"):
            attempts = [f"gxnb_tossed_{i}=1; Domain={prefix}{parent}; Path=/"
                        for i, parent in enumerate(parents) for prefix in ("", ".")]  # fmt: skip
            attempts += [f"galaxysession=tossed; Domain={parent}; Path=/" for parent in parents]
            attempts.append("gxnb_own=1; Path=/")  # the control: the session's own host
            seen = driver.execute_script(
                "for (const cookie of arguments[0]) { document.cookie = cookie; } return document.cookie;", attempts)
            assert "gxnb_own=1" in seen, seen

        with journey.step("Galaxy's pages receive none of them and the person is still themself"):
            driver.get(endpoints["galaxy_url"])
            after = galaxy_cookies()
            tossed = sorted(name for name in after if name.startswith("gxnb_"))
            assert tossed == [], tossed
            assert after["galaxysession"]["value"] == before["galaxysession"]["value"]
            me = driver.execute_async_script(
                "const done = arguments[0]; fetch('/api/users/current').then(r => r.json()).then(u => done(u.email));")
            assert me == email, me
    finally:
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        if session is not None:
            session.galaxy.jobs.cancel_job(session.job_id)
    journey.write_summary()


def test_the_operators_page_of_the_service(chromium):
    """The metrics role's one page (Prometheus' console /consoles/gxnb.html, on the Galaxy server's
    loopback: operators open it through an SSH tunnel). Here the page Prometheus rendered is saved
    and opened in the browser (it is plain HTML and CSS), and screenshotted."""
    prometheus = "http://" + local_cluster.facts()["prometheus_listen"]
    page = local_cluster.run(local_cluster.head(), "curl", "-sf", f"{prometheus}/consoles/gxnb.html")
    journey = browser.Journey(chromium, SHOTS / "operator")
    saved = journey.folder / "gxnb.html"
    saved.write_text(page)
    with journey.step("the service's page"):
        chromium.get(saved.as_uri())
        assert chromium.title == "Galaxy GPU notebook service"
        rows = chromium.find_elements("css selector", "#nodes tr")
        assert len(rows) == 1 + len(local_cluster.job_nodes()), [row.text for row in rows]
        for node in local_cluster.job_nodes():
            assert any(row.text.startswith(node) for row in rows), [row.text for row in rows]
        assert chromium.find_element("id", "sessions-running").is_displayed()
