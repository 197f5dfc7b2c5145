"""Draw docs/gradient_flow.png: where 2x2 pooling sends the gradient, from poolext's own outputs.

    python docs/gradient_flow.py [OUT.png]

A 4x4 feature map is pooled with 2x2 windows (stride 2) into 2x2 by
poolext.functional.max_pool2d and avg_pool2d; a chosen 2x2 incoming gradient is
then sent back through poolext's backward.  Max pooling hands each window's
gradient to the window's maximum (its argmax) and 0 to the other three cells;
average pooling splits it evenly, g/4 to each of the four cells, so each window
still sums to g.  Every number in the picture is read from poolext's forward
and backward; compute_grids() returns them (tests/test_demo.py checks them).
"""

import sys
from pathlib import Path

# The example: each window's maximum sits in a different corner of its window.
INPUT = [[1.0, 5.0, 2.0, 0.0],
         [3.0, 2.0, 1.0, 4.0],
         [6.0, 0.0, 2.0, 1.0],
         [2.0, 4.0, 3.0, 7.0]]
GRAD_OUTPUT = [[1.0, -2.0],
               [0.5, 3.0]]


def compute_grids(x=INPUT, grad_output=GRAD_OUTPUT):
    """Forward and backward of 2x2/stride-2 max and avg pooling with poolext.

    Returns {"max": {...}, "avg": {...}}, each with "input" (4x4), "output" (2x2),
    "grad_output" (2x2), "grad_input" (4x4) as nested lists of floats; "max" also
    has "indices" (2x2 flat offsets h*4+w of each window's argmax, as poolext
    returns them)."""
    import torch

    import poolext.functional as PF

    g = torch.tensor(grad_output, dtype=torch.float64).view(1, 1, 2, 2)
    out = {}
    for kind in ("max", "avg"):
        xt = torch.tensor(x, dtype=torch.float64).view(1, 1, 4, 4).requires_grad_()
        entry = {}
        if kind == "max":
            y, idx = PF.max_pool2d(xt, 2, return_indices=True)
            entry["indices"] = idx.view(2, 2).tolist()
        else:
            y = PF.avg_pool2d(xt, 2)
        y.backward(g)
        entry.update(input=xt.detach().view(4, 4).tolist(), output=y.detach().view(2, 2).tolist(),
                     grad_output=g.view(2, 2).tolist(), grad_input=xt.grad.view(4, 4).tolist())
        out[kind] = entry
    return out


# one colour per window: (light fill, strong fill)
COLOURS = [("#dbe8f6", "#5b9bd5"), ("#fbe3cf", "#ed7d31"),
           ("#dcefd9", "#5fa55a"), ("#ece1f3", "#9a68c2")]


def _fmt(v):
    return f"{v:g}"


def _grid(ax, values, fills, title, bold=None, grey=None):
    """A grid of numbered cells; thick lines around each pooling window.  Numbers sit on
    a patch of their cell's colour, above the arrows that pass behind them."""
    n = len(values)
    for r in range(n):
        for c in range(n):
            ax.add_patch(plt.Rectangle((c, n - 1 - r), 1, 1, facecolor=fills[r][c],
                                       edgecolor="#999999", linewidth=0.6, zorder=1))
            text = _fmt(values[r][c])
            ax.text(c + 0.5, n - 0.5 - r, text, ha="center", va="center",
                    fontsize=12 if len(text) <= 4 else 9.5,
                    fontweight="bold" if bold and bold[r][c] else "normal",
                    color="#aaaaaa" if grey and grey[r][c] else "black", zorder=4,
                    bbox=dict(boxstyle="square,pad=0.1", facecolor=fills[r][c], edgecolor="none"))
    step = 2 if n == 4 else 1
    for k in range(0, n + 1, step):
        ax.plot([k, k], [0, n], color="black", linewidth=2, zorder=3)
        ax.plot([0, n], [k, k], color="black", linewidth=2, zorder=3)
    ax.set_xlim(-0.05, n + 0.05)
    ax.set_ylim(-0.05, n + 0.05)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=11)


def _arrow(ax_from, xy_from, ax_to, xy_to, colour, width=1.6):
    """An arrow drawn with the target axes, behind its numbers (zorder 2)."""
    ax_to.add_artist(ConnectionPatch(
        xyA=xy_from, coordsA=ax_from.transData, xyB=xy_to, coordsB=ax_to.transData,
        arrowstyle="-|>", color=colour, linewidth=width, mutation_scale=13, shrinkA=2,
        shrinkB=1, connectionstyle="arc3,rad=-0.12", zorder=2, clip_on=False))


def draw(out_path):
    global plt, ConnectionPatch
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import ConnectionPatch

    grids = compute_grids()
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.4), gridspec_kw=dict(
        width_ratios=[4, 2, 2, 4], wspace=0.35, hspace=0.45))

    def window(r, c):
        return (r // 2) * 2 + c // 2

    for row, kind in enumerate(("max", "avg")):
        d = grids[kind]
        a_in, a_out, a_gout, a_gin = axes[row]
        if kind == "max":
            argmax = {(i // 4, i % 4) for rr in d["indices"] for i in rr}
            fills_in = [[COLOURS[window(r, c)][1 if (r, c) in argmax else 0] for c in range(4)]
                        for r in range(4)]
            bold = [[(r, c) in argmax for c in range(4)] for r in range(4)]
            fills_gin = [[COLOURS[window(r, c)][1] if (r, c) in argmax else "white"
                          for c in range(4)] for r in range(4)]
            grey = [[(r, c) not in argmax for c in range(4)] for r in range(4)]
            label = "max_pool2d(x, 2)"
        else:
            fills_in = [[COLOURS[window(r, c)][0] for c in range(4)] for r in range(4)]
            bold, grey = None, None
            fills_gin = fills_in
            label = "avg_pool2d(x, 2)"
        fills_small = [[COLOURS[2 * r + c][0] for c in range(2)] for r in range(2)]
        _grid(a_in, d["input"], fills_in, "input x (4x4)", bold=bold)
        _grid(a_out, d["output"], fills_small, f"forward: {label}\n(2x2)")
        _grid(a_gout, d["grad_output"], fills_small, "incoming gradient\n(2x2)")
        _grid(a_gin, d["grad_input"], fills_gin, "backward: gradient to x (4x4)", bold=bold,
              grey=grey)
        for w in range(4):
            wr, wc = divmod(w, 2)
            colour = COLOURS[w][1]
            # arrows leave a cell on its right side and end on the left side of a cell
            out_src, out_dst = (wc + 0.85, 1.5 - wr), (wc + 0.1, 1.5 - wr)
            if kind == "max":
                i = d["indices"][wr][wc]
                r, c = divmod(i, 4)
                _arrow(a_in, (c + 0.85, 3.5 - r), a_out, out_dst, colour)
                _arrow(a_gout, out_src, a_gin, (c + 0.1, 3.5 - r), colour)
            else:
                _arrow(a_in, (2 * wc + 1.85, 3 - 2 * wr), a_out, out_dst, colour)
                for r in (2 * wr, 2 * wr + 1):
                    for c in (2 * wc, 2 * wc + 1):
                        _arrow(a_gout, out_src, a_gin, (c + 0.06, 3.5 - r), colour, width=0.9)
        note = ("max pooling: each window's gradient goes to the window's maximum (its argmax); "
                "the other 12 cells get 0"
                if kind == "max" else
                "average pooling: each window's gradient is split evenly, g/4 to each of its "
                "4 cells, so each window still sums to g")
        a_in.text(0, -0.45, note, fontsize=10.5, ha="left", va="top", transform=a_in.transData)
    fig.suptitle("2x2 pooling, stride 2: forward values and where the gradient goes "
                 "(every number from poolext's forward and backward)", fontsize=12)
    fig.savefig(out_path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return out_path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name(
        "gradient_flow.png")
    print(draw(target))
