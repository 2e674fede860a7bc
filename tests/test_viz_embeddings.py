"""gptlab.viz.embeddings: PCA projection, character groups, and the two lesson-03 figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from gptlab.bigram import bigram_counts
from gptlab.viz.embeddings import (
    CHAR_GROUPS,
    bigram_heatmap,
    char_group,
    embedding_scatter,
    pca_2d,
    show_char,
    top_tokens,
)


def test_char_group():
    assert [char_group(c) for c in "aZe E3!\n"] == [
        "vowel", "CONSONANT (upper case)", "vowel", "space / newline", "VOWEL (upper case)",
        "digit", "punctuation", "space / newline"]
    assert char_group("k") == "consonant"
    assert char_group("\x00") == "other" and char_group("ab") == "other"
    assert all(char_group(chr(i)) in CHAR_GROUPS for i in range(300))


def test_show_char():
    assert [show_char(c) for c in "\n \ta"] == ["⏎", "␣", "⇥", "a"]


def test_pca_2d_recovers_a_plane():
    g = torch.Generator().manual_seed(0)
    plane = torch.randn(50, 2, generator=g) * torch.tensor([5.0, 2.0])  # variance 25 and 4
    basis = torch.linalg.qr(torch.randn(6, 6, generator=g))[0][:2]  # 2 orthonormal rows
    x = plane @ basis + 3.0  # (50, 6): a shifted plane inside 6-D space
    coords, explained = pca_2d(x)
    assert coords.shape == (50, 2) and explained.shape == (2,)
    torch.testing.assert_close(explained.sum(), torch.tensor(1.0))  # the plane holds it all
    assert explained[0] > explained[1]
    # distances between points are kept: the projection is a rotation of the plane
    def dist(p):
        return (p[:, None] - p[None]).norm(dim=-1)

    torch.testing.assert_close(dist(coords), dist(x), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(coords.mean(dim=0), torch.zeros(2), atol=1e-4, rtol=0)


def test_pca_2d_sign_is_reproducible():
    x = torch.randn(20, 5)
    a, _ = pca_2d(x)
    b, _ = pca_2d(-x)  # the same cloud mirrored: the same picture
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert (a.gather(0, a.abs().argmax(0, keepdim=True)) > 0).all()
    with pytest.raises(ValueError, match="at least 2 rows"):
        pca_2d(torch.randn(1, 4))


def test_top_tokens():
    counts = bigram_counts(torch.tensor([2, 2, 2, 0, 2, 1, 0]), 4)
    assert top_tokens(counts, 2).tolist() == [2, 0]
    assert len(top_tokens(counts, 10)) == 4


def test_bigram_heatmap():
    chars = list("ab c\n")
    counts = bigram_counts(torch.randint(0, 5, (200,)), 5)
    fig = bigram_heatmap(counts, chars, k=3)
    ax = fig.axes[0]
    assert len(ax.get_xticklabels()) == 3 and ax.get_images()[0].get_array().shape == (3, 3)
    labels = {t.get_text() for t in ax.get_xticklabels()}
    assert labels <= {"a", "b", "␣", "c", "⏎"}
    plt.close(fig)
    with pytest.raises(ValueError, match="len\\(chars\\)"):
        bigram_heatmap(counts, chars[:3])


def test_embedding_scatter():
    chars = list("aeiouxyzAB.,3 \n")
    fig = embedding_scatter(torch.randn(len(chars), 4), chars, title="t")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == sorted(show_char(c) for c in chars)
    assert ax.get_title() == "t"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        g for g in CHAR_GROUPS if g != "other"]
    plt.close(fig)
    with pytest.raises(ValueError, match="len\\(chars\\)"):
        embedding_scatter(torch.randn(3, 4), chars)
