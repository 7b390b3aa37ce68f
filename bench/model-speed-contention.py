"""Why the PyTorch twin's two threads "collapse" (issue 13): the twin's step with and without one extra runnable
thread on the machine (a busy loop at nice 19, the lowest priority), for OpenMP's default wait policy, for
OMP_WAIT_POLICY=PASSIVE and for one thread, alternating, a few rounds. Not part of the product.

    /usr/bin/python3 bench/model-speed-contention.py [--rounds 2]

Prints one line per run: images/s of the median step, of the mean step, and the CPU other processes used
(cores, the spinner included when it runs), as bench/model-speed-twin.py reports them.
"""
import argparse
import json
import os
import subprocess
import sys

TWIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model-speed-twin.py")
CONFIGS = [("2 threads, default", 2, None), ("2 threads, PASSIVE", 2, "PASSIVE"), ("1 thread", 1, None)]


def twin(threads, policy):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, TWIN, "--threads", str(threads)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_}, load average {os.getloadavg()[0]:.2f}", flush=True)
        for spinner in (False, True):
            busy = subprocess.Popen(["nice", "-n", "19", "sh", "-c", "while :; do :; done"]) if spinner else None
            try:
                for name, threads, policy in CONFIGS:
                    r = twin(threads, policy)
                    print(f"  {name:20} {'+ spinner' if spinner else '         '}  {r['imagesPerSecond']:6.0f} images/s"
                          f" (mean step: {96000 / r['meanStepMs']:5.0f}), others {r['othersCores']}", flush=True)
            finally:
                if busy:
                    busy.kill()
                    busy.wait()


if __name__ == "__main__":
    main()
