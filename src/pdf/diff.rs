//! Incremental updates after a signature (README "Verified signatures
//! (PDF)"): a later revision is harmless when it only adds signatures, their
//! form fields and annotations, as pyHanko's default difference policy says.
//! Every object that a revision changes is compared with its previous version.

use std::collections::BTreeSet;

use super::objects::{get, name_is, Dict, Obj};
use super::scan::Scanned;
use super::xref::{Entry, Loaded, Objects, Table};
use super::PdfError;

/// Page-tree nodes visited at most to find the pages' `/Annots` arrays.
const MAX_PAGE_NODES: usize = 100_000;

/// Catalog keys a signing workflow may change: form, validation data,
/// metadata and the version (pyHanko raises it to 2.0 for the ISO extensions).
const CATALOG_FREE: [&str; 5] = ["AcroForm", "DSS", "Extensions", "Metadata", "Version"];
/// AcroForm keys that adding a signature field changes.
const ACROFORM_FREE: [&str; 5] = ["Fields", "SigFlags", "DR", "DA", "NeedAppearances"];

/// Whether the revision `after` changes nothing but what signing and
/// annotating may change, compared with `before`.
pub(crate) fn harmless(
    file: &Scanned,
    objects: &mut Objects,
    before: &Table,
    after: &Table,
) -> Result<bool, PdfError> {
    if get(&before.trailer, "Root") != get(&after.trailer, "Root") {
        return Ok(false);
    }
    let info: BTreeSet<u32> = [&before.trailer, &after.trailer]
        .into_iter()
        .filter_map(|t| match get(t, "Info") {
            Some(Obj::Ref(n, _)) => Some(*n),
            _ => None,
        })
        .collect();
    let mut arrays: Option<BTreeSet<u32>> = None;
    for (&n, new_entry) in &after.entries {
        let old_entry = before.entries.get(&n).copied().unwrap_or(Entry::Free);
        if old_entry == *new_entry {
            continue;
        }
        if old_entry == Entry::Free {
            continue; // a new object matters only through a changed old one
        }
        if *new_entry == Entry::Free {
            return Ok(false); // an object of the signed revision deleted
        }
        let (Some(old), Some(new)) = (objects.get(file, before, n)?, objects.get(file, after, n)?)
        else {
            return Ok(false);
        };
        // Stream data is not compared, so a rewritten stream counts as changed.
        if (old == new && !old.stream) || info.contains(&n) {
            continue;
        }
        let allowed = match (&old.obj, &new.obj) {
            (Obj::Dict(o), Obj::Dict(d)) if !old.stream && !new.stream => dict_change_allowed(o, d),
            (Obj::Dict(o), Obj::Dict(d)) => {
                // A stream: only metadata (XMP) may be rewritten.
                name_is(o, "Type", "Metadata") && name_is(d, "Type", "Metadata")
            }
            (Obj::Array(o), Obj::Array(d)) => {
                if arrays.is_none() {
                    arrays = Some(annotation_arrays(file, objects, after)?);
                }
                let only_added = o.iter().all(|item| d.contains(item));
                only_added && arrays.as_ref().is_some_and(|a| a.contains(&n))
            }
            _ => false,
        };
        if !allowed {
            tracing::debug!(object = n, "PDF object changed after signing");
            return Ok(false);
        }
    }
    for (&n, old_entry) in &before.entries {
        if *old_entry != Entry::Free && !after.entries.contains_key(&n) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a dictionary changed only as signing or annotating changes it.
fn dict_change_allowed(old: &Dict, new: &Dict) -> bool {
    let is_sig = |d: &Dict| name_is(d, "Type", "Sig") || name_is(d, "Type", "DocTimeStamp");
    if is_sig(old) || is_sig(new) {
        return false; // an existing signature rewritten
    }
    let is_annotation_or_field = |d: &Dict| {
        name_is(d, "Type", "Annot")
            || get(d, "FT").is_some()
            || get(d, "Subtype").is_some_and(|s| s == &Obj::Name(b"Widget".to_vec()))
    };
    if is_annotation_or_field(old) && is_annotation_or_field(new) {
        return true;
    }
    if name_is(old, "Type", "Catalog") {
        return name_is(new, "Type", "Catalog")
            && equal_except(old, new, &CATALOG_FREE)
            && fields_kept(old, new);
    }
    if name_is(old, "Type", "Page") {
        return name_is(new, "Type", "Page")
            && equal_except(old, new, &["Annots"])
            && items_kept(old, new, "Annots");
    }
    if get(old, "Fields").is_some() {
        // The AcroForm dictionary: fields may be added, not removed.
        return equal_except(old, new, &ACROFORM_FREE) && items_kept(old, new, "Fields");
    }
    false
}

/// Whether two dictionaries are equal once the keys `free` are left out.
fn equal_except(a: &Dict, b: &Dict, free: &[&str]) -> bool {
    let keep = |d: &Dict| -> Vec<(Vec<u8>, Obj)> {
        d.iter()
            .filter(|(k, _)| !free.iter().any(|f| f.as_bytes() == k.as_slice()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    keep(a) == keep(b)
}

/// Whether the direct array `/key` keeps all its items (an indirect one is checked where it is stored).
fn items_kept(old: &Dict, new: &Dict, key: &str) -> bool {
    match (get(old, key), get(new, key)) {
        (Some(Obj::Array(o)), Some(Obj::Array(n))) => o.iter().all(|i| n.contains(i)),
        (Some(Obj::Array(o)), _) => o.is_empty(),
        _ => true,
    }
}

/// A catalog with a direct AcroForm keeps its fields.
fn fields_kept(old: &Dict, new: &Dict) -> bool {
    match (get(old, "AcroForm"), get(new, "AcroForm")) {
        (Some(Obj::Dict(o)), Some(Obj::Dict(n))) => items_kept(o, n, "Fields"),
        _ => true,
    }
}

/// Object numbers of the indirect arrays that may grow: the pages' `/Annots`
/// and the AcroForm's `/Fields`, as of `table`.
fn annotation_arrays(
    file: &Scanned,
    objects: &mut Objects,
    table: &Table,
) -> Result<BTreeSet<u32>, PdfError> {
    let mut out = BTreeSet::new();
    let resolve = |objects: &mut Objects, o: Option<&Obj>| -> Result<Option<Dict>, PdfError> {
        Ok(match o {
            Some(Obj::Dict(d)) => Some(d.clone()),
            Some(Obj::Ref(n, _)) => {
                objects
                    .get(file, table, *n)?
                    .and_then(|Loaded { obj, .. }| match obj {
                        Obj::Dict(d) => Some(d),
                        _ => None,
                    })
            }
            _ => None,
        })
    };
    let Some(catalog) = resolve(objects, get(&table.trailer, "Root"))? else {
        return Ok(out);
    };
    if let Some(form) = resolve(objects, get(&catalog, "AcroForm"))? {
        if let Some(Obj::Ref(n, _)) = get(&form, "Fields") {
            out.insert(*n);
        }
    }
    let mut stack: Vec<Obj> = get(&catalog, "Pages").cloned().into_iter().collect();
    let mut visited = BTreeSet::new();
    while let Some(node) = stack.pop() {
        if let Obj::Ref(n, _) = node {
            if !visited.insert(n) || visited.len() > MAX_PAGE_NODES {
                continue;
            }
        }
        let Some(d) = resolve(objects, Some(&node))? else {
            continue;
        };
        if let Some(Obj::Ref(n, _)) = get(&d, "Annots") {
            out.insert(*n);
        }
        if let Some(Obj::Array(kids)) = get(&d, "Kids") {
            stack.extend(kids.iter().cloned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::objects::Parser;

    fn dict(s: &str) -> Dict {
        match Parser::new(s.as_bytes(), 0).object().unwrap() {
            Obj::Dict(d) => d,
            _ => panic!("not a dict"),
        }
    }

    #[test]
    fn a_page_may_only_gain_annotations() {
        let old = dict("<< /Type /Page /Contents 4 0 R /Annots [7 0 R] >>");
        assert!(dict_change_allowed(
            &old,
            &dict("<< /Type /Page /Contents 4 0 R /Annots [7 0 R 9 0 R] >>")
        ));
        assert!(!dict_change_allowed(
            &old,
            &dict("<< /Type /Page /Contents 10 0 R /Annots [7 0 R 9 0 R] >>")
        ));
        assert!(
            !dict_change_allowed(
                &old,
                &dict("<< /Type /Page /Contents 4 0 R /Annots [9 0 R] >>")
            ),
            "an annotation removed"
        );
    }

    #[test]
    fn the_catalog_may_only_change_its_form_and_validation_data() {
        let old = dict("<< /Type /Catalog /Pages 2 0 R >>");
        assert!(dict_change_allowed(
            &old,
            &dict("<< /Type /Catalog /Pages 2 0 R /AcroForm 8 0 R /DSS 9 0 R >>")
        ));
        assert!(!dict_change_allowed(
            &old,
            &dict("<< /Type /Catalog /Pages 3 0 R /AcroForm 8 0 R >>")
        ));
        assert!(!dict_change_allowed(
            &old,
            &dict("<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>")
        ));
    }

    #[test]
    fn fields_may_be_added_to_the_form_but_signatures_not_rewritten() {
        let form = dict("<< /Fields [5 0 R] /SigFlags 3 >>");
        assert!(dict_change_allowed(
            &form,
            &dict("<< /Fields [5 0 R 6 0 R] /SigFlags 3 >>")
        ));
        assert!(!dict_change_allowed(
            &form,
            &dict("<< /Fields [6 0 R] /SigFlags 3 >>")
        ));
        let sig = dict("<< /Type /Sig /Filter /Adobe.PPKLite /M (D:2026) >>");
        assert!(!dict_change_allowed(
            &sig,
            &dict("<< /Type /Sig /Filter /Adobe.PPKLite /M (D:2027) >>")
        ));
        let widget = dict("<< /Type /Annot /Subtype /Widget /FT /Sig /T (A) >>");
        assert!(dict_change_allowed(
            &widget,
            &dict("<< /Type /Annot /Subtype /Widget /FT /Sig /T (A) /V 9 0 R >>")
        ));
        let font = dict("<< /Type /Font /BaseFont /Helvetica >>");
        assert!(!dict_change_allowed(
            &font,
            &dict("<< /Type /Font /BaseFont /Courier >>")
        ));
    }
}
