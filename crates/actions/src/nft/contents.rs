//! The banned sets' contents as a pure model, and the changes that take them where they
//! should be.
//!
//! The kernel keeps an interval set as disjoint ranges of addresses and refuses an
//! element that overlaps another ("interval overlaps with an existing one"). Bans do
//! overlap: an IPv6 attacker's /128s first, then its whole /64; a /24 banned, then one
//! address in it lifted. So when the quick way fails, [`Contents`] replays the wanted
//! changes over what the kernel has and says which elements to delete and which to add.
//!
//! The rule is that the newest ban of an address decides when it ends, and an unban lifts
//! every address it covers: banning a /24 replaces the bans inside it; lifting one
//! address out of a banned /24 leaves the rest of the /24 banned, as ranges, with its
//! remaining time.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv4Subnets, Ipv6Subnets};

/// An address family, and so one of the two sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Family {
    V4,
    V6,
}

/// One set element: an inclusive range of addresses and the seconds until the kernel
/// removes it (`None`: never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Element {
    pub family: Family,
    pub first: u128,
    pub last: u128,
    pub expires: Option<u64>,
}

impl Element {
    /// The element holding exactly `net` (already normalised).
    pub fn of_net(net: IpNet, expires: Option<u64>) -> Element {
        match net {
            IpNet::V4(n) => Element {
                family: Family::V4,
                first: u32::from(n.network()).into(),
                last: u32::from(n.broadcast()).into(),
                expires,
            },
            IpNet::V6(n) => Element {
                family: Family::V6,
                first: u128::from(n.network()),
                last: u128::from(n.broadcast()),
                expires,
            },
        }
    }

    /// Where it is, without its time.
    pub fn span(&self) -> (Family, u128, u128) {
        (self.family, self.first, self.last)
    }

    /// The single prefix it is, if it is one.
    pub fn as_net(&self) -> Option<IpNet> {
        match self.nets().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The fewest prefixes that cover exactly its range.
    pub fn nets(&self) -> Vec<IpNet> {
        match self.family {
            Family::V4 => {
                let (Ok(first), Ok(last)) = (u32::try_from(self.first), u32::try_from(self.last))
                else {
                    return Vec::new();
                };
                Ipv4Subnets::new(Ipv4Addr::from(first), Ipv4Addr::from(last), 0)
                    .map(IpNet::V4)
                    .collect()
            }
            Family::V6 => {
                Ipv6Subnets::new(Ipv6Addr::from(self.first), Ipv6Addr::from(self.last), 0)
                    .map(IpNet::V6)
                    .collect()
            }
        }
    }
}

/// The truncated network, with IPv4-mapped IPv6 networks (`::ffff:a.b.c.d/96+n`) turned
/// into the IPv4 networks they stand for: the kernel sees those packets as IPv4.
pub(crate) fn normalise(net: IpNet) -> IpNet {
    match net.trunc() {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.network().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, n.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(IpNet::V6(n)),
            None => IpNet::V6(n),
        },
        other => other,
    }
}

/// Whether any two of `elements` overlap.
pub(crate) fn any_overlap(elements: &[Element]) -> bool {
    let mut spans: Vec<_> = elements.iter().map(Element::span).collect();
    spans.sort_unstable();
    spans
        .windows(2)
        .any(|w| w[0].0 == w[1].0 && w[1].1 <= w[0].2)
}

/// What to send to the kernel, deletions first.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub delete: Vec<Element>,
    pub add: Vec<Element>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.add.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Kernel,
    New,
}

/// The sets' elements, as the kernel has them and as the changes so far leave them.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    /// By (family, first address): last address, expiry, origin. Disjoint.
    elements: BTreeMap<(Family, u128), (u128, Option<u64>, Origin)>,
    deleted: Vec<Element>,
}

impl Contents {
    /// The kernel's elements. They are disjoint (the kernel refuses overlaps).
    pub fn new(kernel: impl IntoIterator<Item = Element>) -> Contents {
        let elements = kernel
            .into_iter()
            .map(|e| ((e.family, e.first), (e.last, e.expires, Origin::Kernel)))
            .collect();
        Contents {
            elements,
            deleted: Vec::new(),
        }
    }

    /// Bans the element's range until its expiry, replacing what covered it.
    pub fn ban(&mut self, element: Element) {
        self.lift(element.family, element.first, element.last);
        self.elements.insert(
            (element.family, element.first),
            (element.last, element.expires, Origin::New),
        );
    }

    /// Lifts every ban of an address in `first..=last`.
    pub fn lift(&mut self, family: Family, first: u128, last: u128) {
        // The element starting at or before `first` may reach into the range; the others
        // that overlap start inside it.
        let before = self
            .elements
            .range(..=(family, first))
            .next_back()
            .filter(|((f, _), (end, _, _))| *f == family && *end >= first)
            .map(|(k, _)| *k);
        let inside = self
            .elements
            .range((family, first)..=(family, last))
            .map(|(k, _)| *k);
        let touched: Vec<_> = before.into_iter().chain(inside).collect();
        for key in touched {
            let Some((end, expires, origin)) = self.elements.remove(&key) else {
                continue;
            };
            let start = key.1;
            if origin == Origin::Kernel {
                self.deleted.push(Element {
                    family,
                    first: start,
                    last: end,
                    expires,
                });
            }
            if start < first {
                self.elements
                    .insert((family, start), (first - 1, expires, Origin::New));
            }
            if end > last {
                self.elements
                    .insert((family, last + 1), (end, expires, Origin::New));
            }
        }
    }

    /// Every element as the changes leave them.
    pub fn elements(&self) -> Vec<Element> {
        self.elements
            .iter()
            .map(|(&(family, first), &(last, expires, _))| Element {
                family,
                first,
                last,
                expires,
            })
            .collect()
    }

    /// The deletions and additions that turn the kernel's elements into these.
    pub fn changes(self) -> Changes {
        let add = self
            .elements
            .iter()
            .filter(|(_, (_, _, origin))| *origin == Origin::New)
            .map(|(&(family, first), &(last, expires, _))| Element {
                family,
                first,
                last,
                expires,
            })
            .collect();
        Changes {
            delete: self.deleted,
            add,
        }
    }
}

/// The changes that make the kernel's elements exactly `wanted`'s (applied in order, the
/// newest ban of an address deciding), leaving alone an element already there with the
/// same range; and how many were left alone.
pub(crate) fn reconcile(kernel: &[Element], wanted: &[Element]) -> (Changes, usize) {
    let mut desired = Contents::default();
    for w in wanted {
        desired.ban(*w);
    }
    let desired = desired.elements();
    let have: std::collections::HashSet<_> = kernel.iter().map(Element::span).collect();
    let want: std::collections::HashSet<_> = desired.iter().map(Element::span).collect();
    let delete: Vec<_> = kernel
        .iter()
        .filter(|e| !want.contains(&e.span()))
        .copied()
        .collect();
    let add: Vec<_> = desired
        .iter()
        .filter(|e| !have.contains(&e.span()))
        .copied()
        .collect();
    let kept = kernel.len() - delete.len();
    (Changes { delete, add }, kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn el(s: &str, expires: u64) -> Element {
        Element::of_net(net(s), Some(expires))
    }

    fn nets_of(elements: &[Element]) -> Vec<(String, Option<u64>)> {
        elements
            .iter()
            .flat_map(|e| {
                e.nets()
                    .into_iter()
                    .map(move |n| (n.to_string(), e.expires))
            })
            .collect()
    }

    #[test]
    fn normalise_truncates_and_unmaps_ipv4_mapped_networks() {
        assert_eq!(normalise(net("10.1.2.3/24")), net("10.1.2.0/24"));
        assert_eq!(normalise(net("::ffff:10.1.2.3/128")), net("10.1.2.3/32"));
        assert_eq!(normalise(net("::ffff:10.1.2.3/120")), net("10.1.2.0/24"));
        assert_eq!(normalise(net("2001:db8::1/64")), net("2001:db8::/64"));
        assert_eq!(normalise(net("::/0")), net("::/0"));
    }

    #[test]
    fn an_element_is_a_prefix_or_the_fewest_prefixes_of_its_range() {
        assert_eq!(el("10.0.0.0/24", 1).as_net(), Some(net("10.0.0.0/24")));
        assert_eq!(el("::/0", 1).as_net(), Some(net("::/0")));
        assert_eq!(el("0.0.0.0/0", 1).as_net(), Some(net("0.0.0.0/0")));
        let range = Element {
            family: Family::V4,
            first: u32::from(Ipv4Addr::new(10, 0, 0, 8)).into(),
            last: u32::from(Ipv4Addr::new(10, 0, 0, 255)).into(),
            expires: None,
        };
        assert_eq!(range.as_net(), None);
        let nets: Vec<_> = range.nets().iter().map(ToString::to_string).collect();
        assert_eq!(
            nets,
            [
                "10.0.0.8/29",
                "10.0.0.16/28",
                "10.0.0.32/27",
                "10.0.0.64/26",
                "10.0.0.128/25"
            ]
        );
    }

    #[test]
    fn banning_a_network_replaces_the_bans_inside_it() {
        let kernel = [el("2001:db8::1/128", 50), el("2001:db8::2/128", 50)];
        let mut contents = Contents::new(kernel);
        contents.ban(el("2001:db8::/64", 900));
        let changes = contents.changes();
        assert_eq!(changes.delete, kernel);
        assert_eq!(changes.add, [el("2001:db8::/64", 900)]);
    }

    #[test]
    fn lifting_one_address_out_of_a_network_keeps_the_rest_with_its_time() {
        let mut contents = Contents::new([el("10.1.0.0/24", 300)]);
        let one = el("10.1.0.7/32", 0);
        contents.lift(one.family, one.first, one.last);
        let changes = contents.changes();
        assert_eq!(changes.delete, [el("10.1.0.0/24", 300)]);
        let mut rest = nets_of(&changes.add);
        rest.sort();
        let mut expected: Vec<_> = [
            "10.1.0.0/30",
            "10.1.0.4/31",
            "10.1.0.6/32",
            "10.1.0.8/29",
            "10.1.0.16/28",
            "10.1.0.32/27",
            "10.1.0.64/26",
            "10.1.0.128/25",
        ]
        .iter()
        .map(|s| (s.to_string(), Some(300)))
        .collect();
        expected.sort();
        assert_eq!(rest, expected);
    }

    #[test]
    fn the_newest_ban_inside_a_network_decides_for_its_addresses() {
        let mut contents = Contents::new([el("10.1.0.0/24", 300)]);
        contents.ban(el("10.1.0.7/32", 60));
        let after = contents.elements();
        assert_eq!(after.len(), 3, "{after:?}");
        assert!(after.contains(&el("10.1.0.7/32", 60)));
        assert!(
            after
                .iter()
                .all(|e| e.expires == Some(if e.first == e.last { 60 } else { 300 }))
        );
    }

    #[test]
    fn a_ban_of_an_existing_element_deletes_and_adds_it() {
        let mut contents = Contents::new([el("10.0.0.5/32", 10), el("10.0.0.9/32", 10)]);
        contents.ban(el("10.0.0.5/32", 99));
        let changes = contents.changes();
        assert_eq!(changes.delete, [el("10.0.0.5/32", 10)]);
        assert_eq!(changes.add, [el("10.0.0.5/32", 99)]);
    }

    #[test]
    fn the_families_never_mix() {
        let mut contents = Contents::new([el("0.0.0.0/0", 10)]);
        contents.ban(el("::/0", 20));
        let changes = contents.changes();
        assert!(changes.delete.is_empty());
        assert_eq!(changes.add, [el("::/0", 20)]);
    }

    #[test]
    fn overlap_is_found_within_a_family_only() {
        assert!(!any_overlap(&[
            el("10.0.0.0/25", 1),
            el("10.0.0.128/25", 1)
        ]));
        assert!(any_overlap(&[el("10.0.0.0/24", 1), el("10.0.0.128/25", 1)]));
        assert!(!any_overlap(&[el("0.0.0.0/0", 1), el("::/0", 1)]));
    }

    #[test]
    fn reconcile_adds_the_missing_removes_the_unwanted_and_keeps_the_rest() {
        let kernel = [
            el("10.0.0.1/32", 5),
            el("10.0.0.2/32", 5),
            el("2001:db8::/64", 5),
        ];
        let wanted = [
            el("10.0.0.1/32", 100),
            el("10.0.0.3/32", 100),
            el("2001:db8::/64", 9),
        ];
        let (changes, kept) = reconcile(&kernel, &wanted);
        assert_eq!(kept, 2);
        assert_eq!(changes.delete, [el("10.0.0.2/32", 5)]);
        assert_eq!(changes.add, [el("10.0.0.3/32", 100)]);
    }

    /// Per address of 10.0.0.0/26: its expiry, if banned. The brute-force truth.
    fn truth_of(elements: &[Element]) -> Vec<Option<u64>> {
        let base = u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)));
        (0..64)
            .map(|i| {
                elements
                    .iter()
                    .find(|e| e.first <= base + i && base + i <= e.last)
                    .map(|e| e.expires.unwrap_or(u64::MAX))
            })
            .collect()
    }

    fn arb_element() -> impl Strategy<Value = Element> {
        (0u8..64, 26u8..=32, proptest::option::of(1u64..5)).prop_map(|(host, len, t)| {
            let n = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, host), len).unwrap();
            Element::of_net(IpNet::V4(n.trunc()), t)
        })
    }

    proptest! {
        /// Any sequence of bans and lifts over any disjoint kernel contents: the result
        /// is disjoint, every address ends as the newest step says, and applying the
        /// changes (delete, then add) to the kernel's elements gives the result.
        #[test]
        fn contents_follow_the_newest_step_for_every_address(
            initial in proptest::collection::vec(arb_element(), 0..6),
            steps in proptest::collection::vec((any::<bool>(), arb_element()), 0..12),
        ) {
            let mut kernel = Contents::default();
            for e in initial { kernel.ban(e); }
            let kernel = kernel.elements();
            let mut truth = truth_of(&kernel);
            let mut contents = Contents::new(kernel.clone());
            for (ban, e) in &steps {
                let base = u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)));
                for (i, t) in truth.iter_mut().enumerate() {
                    let a = base + i as u128;
                    if e.first <= a && a <= e.last {
                        *t = if *ban { Some(e.expires.unwrap_or(u64::MAX)) } else { None };
                    }
                }
                if *ban { contents.ban(*e) } else { contents.lift(e.family, e.first, e.last) }
            }
            let after = contents.elements();
            prop_assert!(!any_overlap(&after));
            prop_assert_eq!(truth_of(&after), truth.clone());
            let changes = contents.changes();
            let mut applied: Vec<_> = kernel.iter().filter(|e| !changes.delete.contains(e)).copied().collect();
            prop_assert_eq!(applied.len() + changes.delete.len(), kernel.len());
            applied.extend(changes.add.iter().copied());
            prop_assert!(!any_overlap(&applied));
            prop_assert_eq!(truth_of(&applied), truth);
        }

        #[test]
        fn reconcile_ends_at_exactly_what_is_wanted(
            initial in proptest::collection::vec(arb_element(), 0..6),
            wanted in proptest::collection::vec(arb_element(), 0..6),
        ) {
            let mut kernel = Contents::default();
            for e in initial { kernel.ban(e); }
            let kernel = kernel.elements();
            let (changes, kept) = reconcile(&kernel, &wanted);
            let mut applied: Vec<_> = kernel.iter().filter(|e| !changes.delete.contains(e)).copied().collect();
            prop_assert_eq!(applied.len(), kept);
            applied.extend(changes.add.iter().copied());
            let mut desired = Contents::default();
            for w in &wanted { desired.ban(*w); }
            let spans = |v: &[Element]| { let mut s: Vec<_> = v.iter().map(Element::span).collect(); s.sort(); s };
            prop_assert_eq!(spans(&applied), spans(&desired.elements()));
        }
    }
}
