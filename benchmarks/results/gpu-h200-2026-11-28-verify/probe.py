# The probe run on the H200 (torch 2.11.0+cu130 of the image): refused direct calls, each in
# its own process; rc=-11 is a segmentation fault.  (It ran from the repository root; the
# 25-second limit of that run stopped it before its last call.)
import subprocess, sys
calls = {
    "2d H=1 argmax+indices": "ops.max_pool(torch.randn(2,3,1,6), [2,2],[2,2],[0,0],[1,1], False, False, True, True)",
    "2d H=1 values only": "ops.max_pool(torch.randn(2,3,1,6), [2,2],[2,2],[0,0],[1,1], False, False, False, False)",
    "2d W=1": "ops.max_pool(torch.randn(2,3,6,1), [2,2],[2,2],[0,0],[1,1], False, False, True, True)",
    "1d L=1": "ops.max_pool(torch.randn(2,3,1), [2],[2],[0],[1], False, False, True, True)",
    "2d stride0 (raises fine)": "ops.max_pool(torch.randn(2,3,6,6), [2,2],[0,2],[0,0],[1,1], False, False, True, True)",
    "functional H=1": "import poolext.functional as PF; PF.max_pool2d(torch.randn(2,3,1,6), 2)",
}
for name, c in calls.items():
    code = "import torch, poolext\nops = torch.ops.poolext\ntry:\n    " + c.replace("; ", "\n    ") + "\n    print('returned')\nexcept Exception as e:\n    print(type(e).__name__, str(e)[:150])\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    print(f"{name}: rc={r.returncode} {r.stdout.strip()} {r.stderr.strip()[-300:]}")
