"""Make the PyPI `torch` wheel (a CUDA build) import on a CPU-only machine without the ~2.5 GB of
NVIDIA runtime wheels it depends on.

`pip install --no-deps torch` alone does not import: libtorch_cuda.so, libtorch_python.so, libtorch_cpu.so and
libtorch_global_deps.so are linked against libcudart, cuBLAS, cuDNN, NCCL, ... (DT_NEEDED), so the dynamic
loader refuses to load them. This script writes, next to torch's own libraries (torch/lib is in their RPATH as
$ORIGIN), one tiny stub shared library per missing soname. Each stub defines exactly the symbols (with their
symbol versions) that torch imports from that library; every stub function returns the error code 100
(cudaErrorNoDevice; any non-zero status means failure to CUDA libraries, cuBLAS, cuDNN, NCCL, ...), the few that
return a message return a static string. torch then behaves as a CUDA build on a machine without a GPU:
torch.cuda.is_available() is False and every CPU kernel (libtorch_cpu.so, MKL/oneDNN inside it) is the real one.
Nothing here runs on the CPU path. Usage: python torch_cuda_stubs.py   (with the venv's python; idempotent)
"""
import glob, os, re, subprocess, sys, tempfile
import importlib.util

spec = importlib.util.find_spec("torch")
TORCH = os.path.dirname(spec.origin)
LIB = os.path.join(TORCH, "lib")


def sh(*a):
    return subprocess.run(a, check=True, capture_output=True, text=True).stdout


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", sh("readelf", "-dW", path))


def present(soname):
    if os.path.exists(os.path.join(LIB, soname)):
        return True
    return soname in sh("/sbin/ldconfig", "-p")


# ELF files that `import torch` loads eagerly: _C and libtorch_global_deps plus their NEEDED closure in torch/lib.
todo = glob.glob(os.path.join(TORCH, "_C*.so")) + [os.path.join(LIB, "libtorch_global_deps.so")]
elfs, missing = [], set()
while todo:
    f = todo.pop()
    if f in elfs:
        continue
    elfs.append(f)
    for so in needed(f):
        p = os.path.join(LIB, so)
        if os.path.exists(p):
            todo.append(p)
        elif not present(so):
            missing.add(so)
# Stubs written by an earlier run are present now: find them by their marker instead.
for so in os.listdir(LIB):
    p = os.path.join(LIB, so)
    if os.path.isfile(p) and b"viva_tensor bench CUDA stub" in open(p, "rb").read()[:1 << 20]:
        missing.add(so)
elfs = [e for e in elfs if os.path.basename(e) not in missing]
if not missing:
    print("torch_cuda_stubs: nothing missing, no stubs needed")
    sys.exit(0)

# Which symbol-version names belong to which missing soname (from each ELF's version-needs section).
vermap = {}
for f in elfs:
    cur = None
    for line in sh("readelf", "-VW", f).splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            cur = m.group(1)
            continue
        m = re.search(r"Name: (\S+)", line)
        if m and cur in missing:
            vermap[m.group(1)] = cur

defined = set()
for f in glob.glob(os.path.join(LIB, "*.so*")):
    if os.path.basename(f) in missing:
        continue
    for line in sh("readelf", "-W", "--dyn-syms", f).splitlines():
        p = line.split()
        if len(p) >= 8 and p[6] != "UND":
            defined.add(p[7].split("@")[0])
SYSLIBS = ["libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2", "librt.so.1"]
ldc = sh("/sbin/ldconfig", "-p")
for s in SYSLIBS:
    m = re.search(r"\s%s \(libc6,x86-64\) => (\S+)" % re.escape(s), ldc)
    if m:
        defined |= {l.split()[-1].split("@")[0] for l in sh("nm", "-D", "--defined-only", m.group(1)).splitlines() if l.strip()}

syms = {so: {} for so in missing}   # soname -> {name: (kind, version|None)}
for f in elfs:
    for line in sh("readelf", "-W", "--dyn-syms", f).splitlines():
        p = line.split()
        if len(p) < 8 or p[6] != "UND" or p[4] == "WEAK" or not p[7]:
            continue
        name, _, ver = p[7].partition("@")
        ver = ver.split(" ")[0]
        kind = "obj" if p[3] in ("OBJECT", "TLS") else "func"
        if ver:
            if ver in vermap:
                syms[vermap[ver]][name] = (kind, ver)
        elif name not in defined and not name.startswith(("Py", "_Py")):
            syms["libcudart.so.13" if "libcudart.so.13" in missing else sorted(missing)[0]].setdefault(name, (kind, None))

STR = re.compile(r"^(?!cu[A-Z])\w*(ErrorString|ErrorName|StatusString|StatusName)$|^ncclGetLastError$")
out_dir = tempfile.mkdtemp()
for so, table in sorted(syms.items()):
    c = ['static const char viva_msg[] = "CUDA unavailable (viva_tensor bench CUDA stub)";',
         'const char viva_tensor_bench_cuda_stub[] = "viva_tensor bench CUDA stub";']
    vers = {}
    for name, (kind, ver) in sorted(table.items()):
        if kind == "obj":
            c.append(f"char {name}[256];")
        elif STR.match(name):
            c.append(f"const char *{name}(void) {{ return viva_msg; }}")
        else:
            c.append(f"long {name}(void) {{ return 100; }}")
        vers.setdefault(ver, []).append(name)
    src = os.path.join(out_dir, so + ".c")
    open(src, "w").write("\n".join(c) + "\n")
    vs = os.path.join(out_dir, so + ".map")
    with open(vs, "w") as fh:
        for ver, names in vers.items():
            if ver:
                fh.write("%s { global: %s; };\n" % (ver, "; ".join(names)))
        fh.write("VIVA_STUB { global: viva_tensor_bench_cuda_stub%s; local: *; };\n"
                 % "".join("; " + n for n in vers.get(None, [])))
    dst = os.path.join(LIB, so)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-w", "-o", dst, "-Wl,-soname," + so,
                    "-Wl,--version-script=" + vs, src], check=True)
    print(f"torch_cuda_stubs: {so}: {len(table)} symbols")
