# Runs inside gimp-console in the simulated Flatpak (python-fu-eval): the scenarios of
# gimp_driver.py (copied beside this file), then GIMP stays open until the test creates
# "release" in the work folder, so the background worker, which lives only as long as the
# sandbox does, is there for the installer on the host to stop.
import os
import time

WORK = os.environ["BGMASK_TEST_WORK"]
exec(open(os.path.join(WORK, "gimp_driver.py")).read())
deadline = time.monotonic() + float(os.environ.get("BGMASK_TEST_HOLD", "300"))
while not os.path.exists(os.path.join(WORK, "release")) and time.monotonic() < deadline:
    time.sleep(0.2)
