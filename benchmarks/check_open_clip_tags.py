"""Check skacd's preprocessing for every open_clip weights tag, offline.

For each ``(model, tag)`` of ``open_clip.list_pretrained()``, the preprocessing
``CLIPFeaturizer(model, tag)._preprocess_config()`` computes without weights
is compared with what open_clip's own tag path sets (its ``PreprocessCfg``
defaults, the tag's ``get_pretrained_cfg`` over them, and the image size of
the model it builds, here on the meta device: no memory, no weights). Prints
one line per preprocessing family and the totals.

    python benchmarks/check_open_clip_tags.py
"""

import collections
import logging
import time
import warnings

import torch
from open_clip.transform import PreprocessCfg, merge_preprocess_dict

from skacd import CLIPFeaturizer
from skacd.featurizers._open_clip import _open_clip, _preprocess_record


def main():
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    open_clip = _open_clip()
    pairs = open_clip.list_pretrained()
    started = time.perf_counter()
    sizes, equal, differ, skipped = {}, 0, [], {}
    families = collections.defaultdict(list)
    for model_name, tag in pairs:
        cfg = open_clip.get_pretrained_cfg(model_name, tag)
        ours = CLIPFeaturizer(model_name, tag)._preprocess_config()
        key = (ours["mean"], ours["std"], ours["interpolation"], ours["resize_mode"])
        families[repr(key) + f" quick_gelu={bool(cfg.get('quick_gelu'))}"].append(
            f"{model_name}:{tag}"
        )
        if model_name not in sizes:
            try:
                with torch.device("meta"):
                    model = open_clip.create_model(
                        model_name, pretrained=None, load_weights=False,
                        device="meta", pretrained_text=False, pretrained_image=False,
                    )
                sizes[model_name] = model.visual.image_size
            except Exception as exc:  # e.g. a text tower that needs transformers
                sizes[model_name] = None
                skipped[model_name] = repr(exc)[:100]
        if sizes[model_name] is None:
            continue
        theirs = merge_preprocess_dict(PreprocessCfg(), cfg)
        theirs["size"] = sizes[model_name]
        if _preprocess_record(open_clip, model_name, theirs) == ours:
            equal += 1
        else:
            differ.append((model_name, tag))
    for family, members in sorted(families.items(), key=lambda kv: -len(kv[1])):
        print(f"{len(members):4d}  {family}  e.g. {', '.join(members[:3])}")
    print(
        f"{len(pairs)} (model, tag) pairs, {len(families)} families: {equal} equal, "
        f"{len(differ)} differ {differ[:5]}, {len(pairs) - equal - len(differ)} not "
        f"checked (models not buildable here: {skipped}); "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
