"""Rendering the synthetic chest radiographs of :mod:`nnpipe.domains.xray.synthetic` from
their drawn parameters: anatomy (thorax, lungs, heart and mediastinum, spine, ribs,
clavicles), opacities confined to the lung fields, exposure, detector noise and blur.

Coordinates are normalised (x and y from -1 to 1, x to the image's right, y downwards), so
anatomy looks the same at every image size. NOT medical data.
"""

from __future__ import annotations

import numpy as np

Params = dict[str, np.ndarray]  # per-patient or per-image parameters, by name

MAX_BLOBS = 3  # focal consolidations per patient, at most
# Render in chunks of about this many pixels: bounds memory at 1024 px without slowing 64 px.
_CHUNK_PIXELS = 1 << 21
_EDGE = 0.03  # softness of organ outlines, in normalised units


def render_all(
    image_size: int,
    patient_of_image: np.ndarray,
    patient_params: Params,
    jitter: Params,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """Render every image in memory-bounded chunks and quantise to uint8."""
    n_images = len(patient_of_image)
    chunk = max(1, _CHUNK_PIXELS // (image_size * image_size))
    axis = (np.arange(image_size, dtype=np.float32) + 0.5) * (2.0 / image_size) - 1.0
    out = np.empty((n_images, image_size, image_size), dtype=np.uint8)
    for start in range(0, n_images, chunk):
        rows = slice(start, min(start + chunk, n_images))
        params = {k: v[patient_of_image[rows]] for k, v in patient_params.items()}
        params |= {k: v[rows] for k, v in jitter.items()}
        values = _render_chunk(axis, params, noise_rng)
        out[rows] = np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
    return out


def _render_chunk(axis: np.ndarray, params: Params, noise_rng: np.random.Generator) -> np.ndarray:
    """Render one chunk of images as floats in about [0, 1].

    ``x`` has shape (n, 1, size) and ``y`` (n, size, 1): a shift moves whole rows and
    columns, so terms that depend on one coordinate only are computed at 1/size the cost
    and broadcast to full images only where the two meet.
    """
    p = {k: _as_image_column(v) for k, v in params.items() if v.ndim == 1}
    x = axis[None, None, :] - p["shift_x"]
    y = axis[None, :, None] - p["shift_y"]
    right_lung, left_lung = _lung_masks(x, y, p)
    lungs = right_lung + left_lung
    fill = _render_opacities(x, y, p, params, right_lung, left_lung)
    attenuation = _render_anatomy(x, y, p, lungs * (1.0 - fill), params["lung_texture"])

    gain = p["contrast"] * p["contrast_jitter"]
    image = p["exposure"] + p["exposure_jitter"] + 0.08 + gain * (attenuation - 0.08)
    image += noise_rng.standard_normal(image.shape, dtype=np.float32) * p["noise_std"]
    return _blur(image, sigma=max(0.5, 0.6 * len(axis) / 64))


def _as_image_column(values: np.ndarray) -> np.ndarray:
    """Shape per-image scalars as (n, 1, 1) float32 so they broadcast over pixels."""
    return values.astype(np.float32)[:, None, None]


def _lung_masks(x: np.ndarray, y: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Soft masks of the right (image left) and left (image right) lung fields.

    A lung is the upper part of a tall ellipse (rounded apex, widest at the base) cut off
    below by a diaphragm dome; the right hemidiaphragm sits a little higher, as in life.
    """
    masks = []
    for side, lift in ((-1.0, 0.04), (1.0, 0.0)):
        lateral = x - p["body_cx"] - side * p["lung_cx"]
        r = np.hypot(lateral / p["lung_half_width"], (y - p["lung_cy"]) / p["lung_half_height"])
        dome = p["diaphragm_dome"] * (1.0 - np.minimum((lateral / p["lung_half_width"]) ** 2, 1.0))
        below = y - (p["diaphragm_y"] - lift - dome)
        masks.append(_soft_inside(r, edge=0.07) * _soft_step(-below, edge=0.03))
    return masks[0], masks[1]


def _render_anatomy(
    x: np.ndarray, y: np.ndarray, p: Params, air: np.ndarray, lung_texture: np.ndarray
) -> np.ndarray:
    """Compose the anatomy as an attenuation map (bright = dense).

    ``air`` is the lung masks with any opacity's fluid already taken out of them.
    """
    cx = p["body_cx"]
    # Rounded trapezoid: a superellipse whose half-width grows downwards.
    half_width = p["body_half_width"] * (1.0 + p["body_taper"] * (y - 0.1))
    body_r = (np.abs((x - cx) / half_width) ** 4 + np.abs((y - 0.3) / 1.3) ** 4) ** 0.25
    body = _soft_inside(body_r, edge=_EDGE)

    # The heart and mediastinum lie in front of the lungs and hide them where they overlap.
    heart_r = np.hypot(
        (x - cx - p["heart_cx"]) / p["heart_width"], (y - p["diaphragm_y"] + 0.1) / 0.3
    )
    heart = _soft_inside(heart_r, edge=0.06)
    mediastinum = _soft_inside(np.abs(x - cx) / p["mediastinum_width"], edge=0.15)
    hidden = np.maximum(heart, mediastinum)
    vertebrae = 0.75 + 0.25 * np.cos(2 * np.pi * y / 0.12)
    spine = _soft_inside(np.abs(x - cx) / 0.06, edge=0.2) * vertebrae
    trachea = _soft_inside(np.abs(x - cx) / 0.03, 0.2) * _soft_step(-0.4 - y, 0.05)

    # Ribs show best against the dark, air-filled lungs and fade over soft tissue.
    ribs = _render_ribs(x, y, p) * (0.3 + 0.7 * air)
    # Vessels fan out from the hila, so lungs are denser medially than at the periphery.
    lateral = (np.abs(x - cx) - p["lung_cx"] + p["lung_half_width"]) / (2 * p["lung_half_width"])
    hilar = 0.72 + 0.33 * np.clip(lateral, 0.0, 1.0)
    # Breast and pectoral soft tissue greys the lung bases.
    hilar = hilar * (1.0 - 0.18 * _soft_step(y - p["diaphragm_y"] + 0.3, 0.12))
    texture = 1.0 + 0.08 * _sample_field(lung_texture, x, y)

    attenuation = 0.05 + 0.55 * body
    attenuation -= p["lung_darkness"] * air * (1.0 - 0.85 * hidden) * hilar * texture
    attenuation += body * (p["spine_brightness"] * spine - 0.08 * trachea)
    attenuation += body * (p["rib_brightness"] * ribs + 0.1 * _render_clavicles(x, y, cx))
    gradient = 1.0 + p["gradient_x"] * x + p["gradient_y"] * y
    return attenuation * gradient


def _render_ribs(x: np.ndarray, y: np.ndarray, p: Params) -> np.ndarray:
    """Posterior ribs as arcs bowing upwards, with fainter anterior ribs sloping medially."""
    ax = np.abs(x - p["body_cx"])
    posterior_u = y - p["rib_curvature"] * (ax - p["rib_peak"]) ** 2
    anterior_u = y + 0.55 * ax
    wave = 2 * np.pi / p["rib_spacing"]
    posterior = np.exp((np.cos(wave * posterior_u + p["rib_phase"]) - 1.0) / 0.3)
    anterior = np.exp((np.cos(wave * anterior_u + p["rib_phase"] + 1.3) - 1.0) / 0.25)
    lateral_fade = _soft_inside(ax / 0.8, edge=0.06) * _soft_step(ax - 0.08, 0.03)
    return (posterior + 0.35 * anterior) * lateral_fade * _soft_step(0.55 - y, 0.1)


def _render_clavicles(x: np.ndarray, y: np.ndarray, cx: np.ndarray) -> np.ndarray:
    """Two bright bars rising from the top of the sternum towards the shoulders."""
    ax = np.abs(x - cx)
    distance = np.abs(y - (-0.58 - 0.35 * (ax - 0.08) + 0.2 * (ax - 0.08) ** 2))
    along = _soft_inside(np.abs(ax - 0.38) / 0.3, edge=0.1)
    return _soft_inside(distance / 0.04, edge=0.3) * along


def _render_opacities(
    x: np.ndarray,
    y: np.ndarray,
    p: Params,
    params: Params,
    right_lung: np.ndarray,
    left_lung: np.ndarray,
) -> np.ndarray:
    """Map how much of the lungs' air consolidation and diffuse patches replace (0 to 0.95).

    Modelling an opacity as fluid filling air spaces keeps it inside the lung fields and
    never brighter than soft tissue, which is what makes subtle cases subtle.
    """
    patchiness = _sample_field(params["opacity_texture"], x, y)
    patchiness += 0.5 * _sample_field(params["opacity_detail"], x, y)
    opacity = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.float32)
    for k in range(MAX_BLOBS):
        amplitude = _as_image_column(params["blob_amplitude"][:, k])
        if not amplitude.any():
            continue
        dx = x - p["body_cx"] - _as_image_column(params["blob_cx"][:, k])
        dy = y - _as_image_column(params["blob_cy"][:, k])
        sx = _as_image_column(params["blob_sx"][:, k])
        sy = _as_image_column(params["blob_sy"][:, k])
        opacity += amplitude * np.exp(-0.5 * (dx / sx) ** 2) * np.exp(-0.5 * (dy / sy) ** 2)
    opacity *= np.clip(0.8 + 0.35 * patchiness, 0.2, 1.4)

    depth = np.clip((y - p["lung_cy"]) / p["lung_half_height"] + 0.5, -0.5, 0.5)
    lower = 1.0 + p["diffuse_lower_bias"] * depth  # pneumonia favours the lower zones
    # Bright patches over a fainter haze: mostly-opaque fields with clear islands would read
    # as cavities, not pneumonia.
    patches = 0.3 + 0.7 * _soft_step(patchiness - p["diffuse_threshold"], edge=0.5)
    side_mask = p["diffuse_right"] * right_lung + p["diffuse_left"] * left_lung
    opacity += p["diffuse_amplitude"] * patches * lower * side_mask
    return np.clip(opacity, 0.0, 0.95)


def _soft_inside(r: np.ndarray, edge: float) -> np.ndarray:
    """Smooth indicator of ``r < 1``: 1 well inside, 0 well outside, ``edge`` wide ramp."""
    return _soft_step(1.0 - r, edge)


def _soft_step(z: np.ndarray, edge: float) -> np.ndarray:
    """Smooth step from 0 (``z`` << 0) to 1 (``z`` >> 0) over a ramp about ``edge`` wide."""
    return (0.5 * (1.0 + np.tanh(z / edge))).astype(np.float32, copy=False)


def _sample_field(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smoothly interpolate each image's coarse random field at normalised (x, y).

    Upsampling a few control points gives smooth low-frequency texture far more cheaply
    than blurring full-resolution noise with a wide kernel. Interpolation is separable,
    so it is two small batched matrix products: rows' weights @ field @ columns' weights.
    """
    row_weights = _interpolation_weights(y[:, :, 0], field.shape[1])
    column_weights = _interpolation_weights(x[:, 0, :], field.shape[2])
    return row_weights @ field @ column_weights.transpose(0, 2, 1)


def _interpolation_weights(coords: np.ndarray, nodes: int) -> np.ndarray:
    """Weights (n, len, nodes) of each coordinate on the field's control points.

    Smoothstep-shaped hat functions (they still sum to one) hide the creases that plain
    linear interpolation leaves at the control points.
    """
    position = np.clip((coords + 1.0) * 0.5 * (nodes - 1), 0, nodes - 1)
    hat = np.clip(1.0 - np.abs(position[..., None] - np.arange(nodes, dtype=np.float32)), 0, 1)
    return (hat * hat * (3.0 - 2.0 * hat)).astype(np.float32)


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the last two axes, with reflected borders.

    Written in numpy rather than scipy so the output does not depend on which optional
    libraries are installed.
    """
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * images.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(images, pad, mode="reflect")
        length = images.shape[axis]
        result = np.zeros_like(images)
        for offset, weight in enumerate(taps):
            result += weight * np.take(padded, np.arange(offset, offset + length), axis=axis)
        images = result
    return images
