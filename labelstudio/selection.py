"""Which tasks to annotate next: the least certain, spread over what they are about. Of the
CANDIDATES x size least certain, a k-means of their sentence embeddings (weighted by uncertainty)
into `size` clusters, and the sentence nearest each centre (Zhdanov 2019, "Diverse mini-batch
active learning"). eval.active_learning measures it against least certain first and random order."""

import functools
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

CANDIDATES = 10  # the clusters are drawn from this many times `size` least certain sentences


def next_batch(certainty: np.ndarray, texts: list[str], size: int, rng: np.random.Generator,
               embeddings: dict | None = None) -> np.ndarray:
    """Positions of `size` texts to annotate next, least certain first (`certainty` as in
    labelstudio.predictions.certainty); `embeddings` caches text -> embedding between calls."""
    least_certain = np.argsort(certainty, kind="stable")[:CANDIDATES * size]
    uncertainty = np.clip(1 - certainty[least_certain], 1e-3, None)  # k-means needs a positive weight
    batch = spread_out(least_certain, uncertainty, embed([texts[i] for i in least_certain], embeddings), size, rng)
    return batch[np.argsort(certainty[batch], kind="stable")]


def spread_out(candidates: np.ndarray, weights: np.ndarray, embeddings: np.ndarray, size: int,
               rng: np.random.Generator) -> np.ndarray:
    """`size` of the candidates (least certain first): a k-means of their embeddings weighted by
    `weights` into `size` clusters, and from each the candidate nearest its centre; where repeated
    sentences leave fewer clusters, the next least certain fill the batch."""
    if len(candidates) <= size:
        return candidates
    with warnings.catch_warnings():  # fewer distinct sentences than clusters: filled below
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(size, n_init=1, random_state=int(rng.integers(2**31))).fit(embeddings, sample_weight=weights)
    distance = np.linalg.norm(embeddings - kmeans.cluster_centers_[kmeans.labels_], axis=1)
    clusters = [np.flatnonzero(kmeans.labels_ == cluster) for cluster in range(size)]
    chosen = candidates[[members[distance[members].argmin()] for members in clusters if len(members)]]
    return np.concatenate([chosen, candidates[~np.isin(candidates, chosen)][:size - len(chosen)]])


def embed(texts: list[str], cache: dict | None = None) -> np.ndarray:
    """Sentence embeddings from the packaged all-MiniLM-L6-v2 (a sentence-transformers model),
    whatever the tagger's base: a sentence encoder is what measures how alike two sentences are."""
    cache = {} if cache is None else cache
    missing = [text for text in dict.fromkeys(texts) if text not in cache]
    if missing:
        cache.update(zip(missing, sentence_encoder().encode(missing, batch_size=64, normalize_embeddings=True)))
    return np.stack([cache[text] for text in texts])


@functools.cache
def sentence_encoder():
    from sentence_transformers import SentenceTransformer
    from train.model import packaged_encoder_path
    return SentenceTransformer(packaged_encoder_path())
