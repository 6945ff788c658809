#!/usr/bin/env bash
# Copies the real AWS samples (../shared/aws-samples next to the repository, or
# $EC2_IID_SAMPLES) into the fuzz corpora as `corpus/<target>/shared-*`. These copies are
# ignored by git (.gitignore: fuzz/corpus/*/shared-*): the samples are never committed.
# Without the samples folder it prints a notice and does nothing.
set -euo pipefail
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
samples="${EC2_IID_SAMPLES:-$fuzz_dir/../../shared/aws-samples}"
if [ ! -d "$samples" ]; then
    echo "notice: $samples is missing; fuzzing with the committed seeds only" >&2
    exit 0
fi
count=0
for file in "$samples"/*; do
    name="$(basename "$file")"
    case "$name" in
        *.b64 | *.der | *.bin) targets="parse verify" ;;
        *.document.json) targets="document" ;;
        *) continue ;;
    esac
    for target in $targets; do
        mkdir -p "$fuzz_dir/corpus/$target"
        cp "$file" "$fuzz_dir/corpus/$target/shared-$name"
        count=$((count + 1))
    done
done
# /signature pairs for the verify target: document bytes, a NUL byte, the signature text.
for signature in "$samples"/*.signature.b64; do
    [ -e "$signature" ] || continue
    id="$(basename "$signature" .signature.b64)"
    [ -e "$samples/$id.document.json" ] || continue
    { cat "$samples/$id.document.json"; printf '\0'; cat "$signature"; } \
        > "$fuzz_dir/corpus/verify/shared-$id.signature-pair"
    count=$((count + 1))
done
echo "seeded $count files from $samples"
