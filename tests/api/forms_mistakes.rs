//! One-mistake definitions: each case makes one small edit to a real file of the catalog (a
//! definition, a block or catalog.yaml) and names the file and line where `forms check` must
//! report it, and a fragment of the message. Every case must be caught at that line, nothing
//! may be reported in any other file (a broken block is reported once, at the block), and the
//! checker must never panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use madoguchi::forms::lint::{self, Problem};

const J: &str = "juminhyo/juminhyo-copy-request.yaml";
const K: &str = "koseki/koseki-shomei-request.yaml";
const H: &str = "kosodate/hoiku-riyo-moshikomi.yaml";
const CATALOG_FILE: &str = "catalog.yaml";
const APPLICANT: &str = "_blocks/applicant.yaml";
const PERSON: &str = "_blocks/person.yaml";
const POSTAL: &str = "_blocks/postal-delivery.yaml";
const PAYEE: &str = "_blocks/payee-account.yaml";

/// The files a scratch catalog holds: the organisation, every block, three definitions.
const FILES: [&str; 8] = [CATALOG_FILE, APPLICANT, PERSON, POSTAL, PAYEE, J, K, H];

struct Case {
    /// The file edited, relative to `forms/`.
    file: &'static str,
    /// The text replaced (its first occurrence) and its replacement.
    find: &'static str,
    replace: &'static str,
    /// The expected line: the first line of the edited file containing this text, or, when
    /// empty, the line where the replacement starts.
    at: &'static str,
    /// A fragment of the expected message.
    message: &'static str,
    /// Where the problem is reported, when not in the edited file.
    reported_in: Option<&'static str>,
}

const fn case(
    file: &'static str,
    find: &'static str,
    replace: &'static str,
    at: &'static str,
    message: &'static str,
) -> Case {
    Case {
        file,
        find,
        replace,
        at,
        message,
        reported_in: None,
    }
}

const CASES: &[Case] = &[
    // --- top level -----------------------------------------------------------------------
    case(J, "version: 1", "version: 0", "", "`version` starts at 1"),
    case(
        J,
        "version: 1",
        "version: one",
        "",
        "`version`: expected a whole number, 0 or more, found the text \"one\"",
    ),
    case(
        J,
        "version: 1",
        "version: -1",
        "",
        "expected a whole number, 0 or more, found the number -1",
    ),
    case(
        J,
        "id: juminhyo-copy-request",
        "id: juminhyo-copy",
        "",
        "must equal the file name",
    ),
    case(
        J,
        "id: juminhyo-copy-request",
        "id: Juminhyo_Copy",
        "",
        "must be kebab-case",
    ),
    case(
        J,
        "processing_days: 3",
        "procesing_days: 3",
        "",
        "unknown key `procesing_days`; the keys here are id, version",
    ),
    case(
        J,
        "processing_days: 3\n",
        "",
        "id: juminhyo-copy-request",
        "missing key `processing_days`",
    ),
    case(
        J,
        "assurance: card-sign",
        "assurance: card_sign",
        "",
        "`card_sign` is not one of the choices: none, card-auth, card-sign",
    ),
    case(
        J,
        "category: juminhyo",
        "category: jumin",
        "",
        "category `jumin` must equal the folder name",
    ),
    case(
        J,
        "division: madoguchi",
        "division: madoguchi-ka",
        "",
        "unknown division `madoguchi-ka`",
    ),
    case(
        J,
        "  en: Request for a certified copy of the resident record (juminhyo)\n",
        "  en: Request for a certified copy of the resident record (juminhyo)\n  zh: 住民票\n",
        "  zh:",
        "a text has only `ja` and `en`; `zh` would never be shown",
    ),
    case(
        J,
        "  en: Request for a certified copy of the resident record (juminhyo)\n",
        "",
        "title:",
        "missing key `en`",
    ),
    case(
        J,
        "  ja: 住民票の写しの交付請求",
        "  ja: \"\"",
        "",
        "the ja text is empty",
    ),
    case(
        J,
        "processing_days: 3",
        "processing_days: three days",
        "",
        "`processing_days`: expected a whole number",
    ),
    case(
        J,
        "processing_days: 3",
        "processing_days: 3\nnational: maybe",
        "national:",
        "`national`: expected true or false",
    ),
    case(
        J,
        "  per_unit: {amount: 300, quantity: copies}",
        "  fixed: 300\n  per_unit: {amount: 300, quantity: copies}",
        "fee:",
        "exactly one of `fixed`, `per_unit`, `computed`",
    ),
    case(
        J,
        "quantity: copies}",
        "quantity: copy}",
        "per_unit:",
        "fee quantity names an unknown field `copy`",
    ),
    case(
        J,
        "quantity: copies}",
        "quantity: purpose}",
        "per_unit:",
        "fee quantity `purpose` must be an integer field",
    ),
    case(
        J,
        "  per_unit: {amount: 300, quantity: copies}",
        "  per_unit: {amount: -300, quantity: copies}",
        "",
        "`amount`: expected a whole number, 0 or more",
    ),
    case(
        J,
        "  division: [received]",
        "  division: [recieved]",
        "",
        "unknown division event `recieved` (the events are received, resubmitted, withdrawn)",
    ),
    case(
        J,
        "  applicant: [received, returned, completed, rejected, withdrawn]",
        "  applicant: [received, finished]",
        "",
        "unknown applicant event `finished`",
    ),
    case(
        J,
        "legal_basis: 住民基本台帳法 第12条",
        "legal_basis: [住民基本台帳法]",
        "",
        "`legal_basis`: expected a text, found a list",
    ),
    case(
        J,
        "processing_days: 3",
        "processing_days: 3.5",
        "",
        "`processing_days`: expected a whole number, 0 or more, found the number 3.5",
    ),
    // --- the law's keys ------------------------------------------------------------------
    case(
        K,
        "assurance: card-sign",
        "assurance: card-auth",
        "",
        "needs `assurance: card-sign`",
    ),
    case(
        K,
        "  who: residents-and-honseki",
        "  who: honseki",
        "",
        "`honseki` is not one of the choices: residents, residents-and-honseki, residents-and-former",
    ),
    case(
        K,
        "  send_to: signature-address",
        "  send_to: anywhere",
        "",
        "`anywhere` is not one of the choices: registered-address, signature-address",
    ),
    case(
        K,
        "allowed: [self, spouse, lineal_ascendant, lineal_descendant]",
        "allowed: [self, spouse, lineal_ascendant, lineal_descendant, third_party]",
        "",
        "`third_party` may not request this certificate online",
    ),
    case(
        K,
        "field: requester_relationship",
        "field: relation",
        "",
        "names an unknown field `relation`",
    ),
    case(
        K,
        "field: requester_relationship",
        "field: purpose_other",
        "",
        "must be a radio or select",
    ),
    case(
        K,
        "          - {value: spouse, label: {ja: 配偶者, en: Spouse}}",
        "          - {value: spouse, label: {ja: 配偶者, en: Spouse}}\n          - {value: sibling, label: {ja: 兄弟姉妹, en: Sibling}}",
        "value: sibling",
        "option `sibling` is not an allowed requester",
    ),
    case(
        J,
        "  send_to: registered-address",
        "  send_to: registered-address\n  relationship: {field: scope, allowed: [self, spouse]}",
        "relationship:",
        "`spouse` may not request this certificate online (for `who: residents` the law allows self, household)",
    ),
    case(
        J,
        "      - id: delivery_notice",
        "      - include: postal-delivery\n      - id: delivery_notice",
        "include: postal-delivery",
        "the postal-delivery block lets the resident choose another address",
    ),
    // --- routing (and the queues of catalog.yaml) ----------------------------------------
    case(
        H,
        "    queue: kosodate-hoiku\nexamples:",
        "    queue: kosodate-hoiku2\nexamples:",
        "",
        "unknown queue `kosodate-hoiku2`",
    ),
    case(
        H,
        "  - when: true",
        "  - when: \"always\"",
        "",
        "routing `when` must be a JSON Logic condition",
    ),
    case(
        H,
        "  - when: true",
        "  - when: false",
        "",
        "routing `when` can never be true",
    ),
    case(
        H,
        "  - when: true",
        "  - when: {\"==\": [{\"var\": \"application_type\"}, \"move\"]}",
        "",
        "compares `application_type` with the text \"move\", which is not one of its options (new, transfer)",
    ),
    // --- pages ---------------------------------------------------------------------------
    case(
        J,
        "  - id: request",
        "  - id: Request",
        "",
        "page id `Request` must be snake_case",
    ),
    case(
        J,
        "    title: {ja: 請求内容, en: What you need}",
        "    title: {ja: 請求内容}",
        "",
        "missing key `en`",
    ),
    case(
        J,
        "    title: {ja: 請求内容, en: What you need}",
        "    title: {ja: 請求内容, en: What you need}\n    show_if: \"scope == household\"",
        "show_if:",
        "a text is not evaluated",
    ),
    case(
        J,
        "    title: {ja: 請求内容, en: What you need}",
        "    title: {ja: 請求内容, en: What you need}\n    show_if: false",
        "show_if:",
        "page `request` can never be shown",
    ),
    case(
        J,
        "    title: {ja: 請求内容, en: What you need}",
        "    title: {ja: 請求内容, en: What you need}\n    show_if: {\"==\": [{\"var\": \"nope\"}, 1]}",
        "show_if:",
        "names an unknown field `nope`",
    ),
    case(
        J,
        "    title: {ja: 請求内容, en: What you need}",
        "    title: {ja: 請求内容, en: What you need}\n    hidden: true",
        "hidden:",
        "unknown key `hidden`",
    ),
    case(
        H,
        "  - id: child",
        "  - id: guardian",
        "",
        "page id `guardian` appears twice (first at line",
    ),
    case(
        J,
        "    title: {ja: 請求内容, en: What you need}",
        "    title: {ja: 請求内容, en: What you need, ko: 청구}",
        "",
        "`ko` would never be shown",
    ),
    // --- fields --------------------------------------------------------------------------
    case(
        J,
        "        type: radio\n        label: {ja: 必要な方",
        "        type: radios\n        label: {ja: 必要な方",
        "",
        "`radios` is not one of the choices: text, textarea",
    ),
    case(
        J,
        "      - id: purpose_other",
        "      - id: purposeOther",
        "",
        "field id `purposeOther` must be snake_case",
    ),
    case(
        J,
        "      - id: purpose_other",
        "      - id: purpose",
        "",
        "field id `purpose` appears twice (first at line",
    ),
    case(
        J,
        "      - id: purpose_other",
        "      - id: applicant_phone",
        "",
        "a block brings fields with fixed ids",
    ),
    case(
        J,
        "        label: {ja: 通数, en: Number of copies}\n",
        "",
        "- id: copies",
        "field `copies` needs a `label`",
    ),
    case(
        J,
        "        type: integer\n",
        "",
        "- id: copies",
        "field `copies` needs a `type`",
    ),
    case(
        J,
        "label: {ja: 通数, en: Number of copies}",
        "label: {ja: 通数, en: Number of copies, ko: 통수}",
        "",
        "`ko` would never be shown",
    ),
    case(
        J,
        "        label: {ja: 通数, en: Number of copies}",
        "        label: {ja: 通数, en: Number of copies}\n        help: {ja: 1通から, en: \"\"}",
        "help:",
        "the en text is empty",
    ),
    case(
        J,
        "        min: 1\n        max: 10",
        "        min: 11\n        max: 10",
        "max: 10",
        "`max` (10) is below `min` (11)",
    ),
    case(
        J,
        "        max: 10",
        "        max: ten",
        "",
        "`max` must be a number, found the text \"ten\"",
    ),
    case(
        J,
        "        min: 1\n",
        "        min: 1.5\n",
        "",
        "`min` must be a whole number for type integer",
    ),
    case(
        J,
        "        max_length: 100",
        "        min_length: 200\n        max_length: 100",
        "max_length: 100",
        "`max_length` (100) is below `min_length` (200)",
    ),
    case(
        J,
        "        max_length: 100",
        "        max_length: 0",
        "",
        "`max_length: 0` allows no text",
    ),
    case(
        J,
        "        max_length: 100",
        "        max_length: 100\n        pattern: \"[a-z\"",
        "pattern:",
        "`pattern` is not a valid regular expression: unclosed character class",
    ),
    case(
        J,
        "        max: 10",
        "        max: 10\n        pattern: \"[0-9]+\"",
        "pattern:",
        "`pattern` does not apply to type integer",
    ),
    case(
        J,
        "        max_length: 100",
        "        max_length: 100\n        min: 5",
        "min: 5",
        "`min` does not apply to type text",
    ),
    case(
        J,
        "        max_length: 100",
        "        max_length: 100\n        max_files: 2",
        "max_files",
        "`max_files` does not apply to type text",
    ),
    case(
        J,
        "        max_length: 100",
        "        max_length: 100\n        prefill: city",
        "prefill: city",
        "`prefill` does not apply to type text",
    ),
    case(
        J,
        "        max_length: 100",
        "        max_length: 100\n        max_length_chars: 2",
        "max_length_chars",
        "unknown key `max_length_chars`",
    ),
    case(
        J,
        "        max_length: 100",
        "        max_length: 100\n        required_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "required_if:",
        "keep `required` or `required_if`, not both",
    ),
    case(
        J,
        "        required: true\n        min: 1",
        "        required_if: false\n        min: 1",
        "required_if: false",
        "`required_if` can never be true, so the field is never required",
    ),
    case(
        J,
        "        required: true\n        min: 1",
        "        required_if: {\"==\": [{\"var\": \"scope\"}, \"all\"]}\n        min: 1",
        "required_if:",
        "compares `scope` with the text \"all\", which is not one of its options (household, self, some)",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"==\": [1, 2]}",
        "",
        "`show_if` can never be true, so the field is never shown",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"==\": [{\"var\": \"purpose_typo\"}, \"other\"]}",
        "",
        "field `purpose_other`: `show_if` names an unknown field `purpose_typo`",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"==\": [{\"var\": \"purpose\"}]}",
        "",
        "`==` takes 2 values, found 1",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"!\": [{\"var\": \"purpose\"}, \"other\"]}",
        "",
        "`!` takes 1 value, found 2",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: purpose == other",
        "",
        "a text is not evaluated",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: 1",
        "",
        "must be a JSON Logic condition",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"equals\": [{\"var\": \"purpose\"}, \"other\"]}",
        "",
        "unknown operator `equals`",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"], \"!=\": [1, 2]}",
        "",
        "exactly one operator",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"others\"]}",
        "",
        "compares `purpose` with the text \"others\", which is not one of its options (employment",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"in\": [{\"var\": \"purpose\"}, [\"other\", \"misc\"]]}",
        "",
        "compares `purpose` with the text \"misc\"",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"in\": [\"mynumber\", {\"var\": \"extra_items\"}]}",
        "",
        "compares `extra_items` with the text \"mynumber\"",
    ),
    case(
        J,
        "      - id: copies",
        "      - id: kind\n        type: select\n        label: {ja: 種類, en: Kind}\n      - id: copies",
        "- id: kind",
        "field `kind` needs `options`",
    ),
    // --- conditions the browser and the server would evaluate differently -----------------
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"==\": [{\"var\": \"copies\"}, 0]}",
        "",
        "compares `copies` with the number 0 using `==`, which the browser and the server evaluate differently",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"!=\": [{\"var\": \"scope\"}, \"\"]}",
        "",
        "use `===` / `!==`, or `!` / `!!` to test for an answer",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\"==\": [{\"var\": \"extra_items\"}, \"my_number\"]}",
        "",
        "compares the multi_select `extra_items` (a list) with `==`",
    ),
    case(
        J,
        "show_if: {\"==\": [{\"var\": \"purpose\"}, \"other\"]}",
        "show_if: {\">\": [{\"var\": \"purpose\"}, 3]}",
        "",
        "only numbers and dates can be ordered alike",
    ),
    case(
        K,
        "{\"var\": \"copies\"}, {\"if\"",
        "{\"var\": \"purpose\"}, {\"if\"",
        "computed:",
        "computes with `purpose`, which is not a number field",
    ),
    case(
        K,
        "400, 450]}]}",
        "400, {\"/\": [900, 0]}]}]}",
        "computed:",
        "divides by 0 with `/`",
    ),
    case(
        K,
        "        required: true\n        min: 1\n        max: 10",
        "        min: 1\n        max: 10",
        "computed:",
        "computes with `copies`, which may be unanswered",
    ),
    // --- options -------------------------------------------------------------------------
    case(
        J,
        "          - {value: self, label: {ja: 本人のみ, en: Only me}}",
        "          - {value: household, label: {ja: 本人のみ, en: Only me}}",
        "",
        "option `household` appears twice",
    ),
    case(
        J,
        "{value: self, label: {ja: 本人のみ, en: Only me}}",
        "{value: self, label: {ja: 本人のみ}}",
        "",
        "missing key `en`",
    ),
    case(
        J,
        "{value: self, label: {ja: 本人のみ, en: Only me}}",
        "{value: self, label: {ja: 本人のみ, en: Only me}, hint: x}",
        "",
        "unknown key `hint`; the keys here are value, label",
    ),
    case(
        J,
        "{value: self, label: {ja: 本人のみ, en: Only me}}",
        "{label: {ja: 本人のみ, en: Only me}}",
        "",
        "missing key `value`",
    ),
    case(
        J,
        "{value: self, label: {ja: 本人のみ, en: Only me}}",
        "{value: \"\", label: {ja: 本人のみ, en: Only me}}",
        "",
        "an option needs a `value`",
    ),
    case(
        J,
        "{value: self, label: {ja: 本人のみ, en: Only me}}",
        "{value: self, label: {ja: 本人のみ, en: \" \"}}",
        "",
        "the en text is empty",
    ),
    case(
        J,
        "{value: self, label: {ja: 本人のみ, en: Only me}}",
        "{value: self, label: 本人のみ}",
        "",
        "expected a text in both languages, {ja: …, en: …}, found the text \"本人のみ\"",
    ),
    case(
        J,
        "{value: self, label: {ja: 本人のみ, en: Only me}}",
        "{value: Self Only, label: {ja: 本人のみ, en: Only me}}",
        "",
        "option value `Self Only` may use only a-z, 0-9, _ and -",
    ),
    case(
        H,
        "        accept: [pdf, jpeg, png]\n        max_files: 3",
        "        accept: [pdf, jpeg, png]\n        max_files: 25",
        "max_files: 25",
        "`max_files` is at most 20",
    ),
    case(
        J,
        "processing_days: 3",
        "processing_days: 400",
        "",
        "`processing_days` is at most 365",
    ),
    // --- groups --------------------------------------------------------------------------
    case(
        J,
        "        fields:\n          - id: name\n            type: text\n            label: {ja: 氏名, en: Name}\n            required: true\n            max_length: 60\n",
        "",
        "- id: members",
        "group `members` needs `fields`",
    ),
    case(
        J,
        "            max_length: 60\n",
        "            max_length: 60\n          - id: name # again\n            type: text\n            label: {ja: 氏名, en: Name}\n",
        "# again",
        "field id `name` appears twice",
    ),
    case(
        J,
        "        min_items: 1\n        max_items: 10",
        "        min_items: 11\n        max_items: 10",
        "max_items: 10",
        "`max_items` (10) is below `min_items` (11)",
    ),
    case(
        J,
        "        max_items: 10",
        "        max_items: 0",
        "",
        "`max_items: 0` allows nothing",
    ),
    case(
        J,
        "            max_length: 60\n",
        "            max_length: 60\n            show_if: {\"var\": \"nickname\"}\n",
        "show_if: {\"var\": \"nickname\"}",
        "names an unknown field `nickname`",
    ),
    case(
        H,
        "          - include: person",
        "          - include: persons",
        "",
        "unknown block `persons`",
    ),
    case(
        H,
        "          - include: person",
        "          - include: person\n            id: child",
        "",
        "an `include: person` entry takes no other keys",
    ),
    // --- other field types ---------------------------------------------------------------
    case(
        J,
        "          en: The copy is mailed to your registered address and is not forwarded. The same applies to a copy showing the My Number.\n",
        "",
        "text:",
        "missing key `en`",
    ),
    case(
        J,
        "      - id: delivery_notice\n        type: info\n",
        "      - id: delivery_notice\n        type: info\n        required: true # here\n",
        "# here",
        "info `delivery_notice` carries no value and cannot be required",
    ),
    case(
        K,
        "            max: today",
        "            max: yesterday",
        "",
        "the date limit the text \"yesterday\" cannot be read",
    ),
    case(
        K,
        "            max: today",
        "            max: today+1w",
        "",
        "cannot be read; write `YYYY-MM-DD`, `today`, `today+N` or `today-N`",
    ),
    case(
        K,
        "            max: today",
        "            max: 2026-02-30",
        "",
        "cannot be read",
    ),
    case(
        K,
        "            max: today",
        "            max: 20260101",
        "",
        "cannot be read",
    ),
    case(
        K,
        "            max: today",
        "            min: \"2030-01-01\"\n            max: \"2020-01-01\"",
        "max: \"2020",
        "`max` is before `min`, so no date is allowed",
    ),
    case(
        K,
        "            max: today",
        "            min: today+10\n            max: today",
        "max: today",
        "`max` is before `min`",
    ),
    case(
        H,
        "        accept: [pdf, jpeg, png]\n        max_files: 3",
        "        accept: []\n        max_files: 3",
        "accept: []",
        "`accept: []` lists nothing",
    ),
    case(
        H,
        "        accept: [pdf, jpeg, png]\n        max_files: 3",
        "        accept: [pdf, docx]\n        max_files: 3",
        "accept: [pdf, docx]",
        "`docx` is not one of the choices: pdf, jpeg, png, heic",
    ),
    case(
        H,
        "        accept: [pdf, jpeg, png]\n        max_files: 3",
        "        accept: [pdf, jpeg, png]\n        max_files: 0",
        "max_files: 0",
        "`max_files` must be at least 1",
    ),
    case(
        J,
        "      - id: copies",
        "      - id: donation\n        type: money\n        label: {ja: 寄付, en: Donation}\n        min: -100\n      - id: copies",
        "min: -100",
        "an amount of money is never below 0",
    ),
    case(
        J,
        "      - id: copies",
        "      - id: wants_receipt\n        type: boolean\n        label: {ja: 領収書, en: Receipt}\n        required_if: {\"==\": [{\"var\": \"wants_receipt\"}, \"yes\"]}\n      - id: copies",
        "required_if:",
        "compares the yes/no field `wants_receipt` with the text \"yes\"",
    ),
    case(
        J,
        "      - include: applicant",
        "      - include: applicant\n        id: x",
        "",
        "an `include: applicant` entry takes no other keys",
    ),
    case(
        J,
        "      - include: applicant",
        "      - include: aplicant",
        "",
        "unknown block `aplicant` (no _blocks/aplicant.yaml; the blocks are applicant, payee-account, person, postal-delivery)",
    ),
    // --- computed fees -------------------------------------------------------------------
    case(
        K,
        "  computed: {\"*\": [{\"var\": \"copies\"}, {\"if\": [{\"==\": [{\"var\": \"certificate_type\"}, \"electronic_code\"]}, 400, 450]}]}",
        "  computed: \"copies * 450\"",
        "",
        "the computed fee must be a number or a JSON Logic expression",
    ),
    case(
        K,
        "\"electronic_code\"]}, 400, 450]",
        "\"electronic_code\", 1]}, 400, 450]",
        "computed:",
        "`==` takes 2 values, found 3",
    ),
    case(
        K,
        "\"electronic_code\"]}, 400, 450]",
        "\"e_code\"]}, 400, 450]",
        "computed:",
        "compares `certificate_type` with the text \"e_code\"",
    ),
    case(
        K,
        "{\"var\": \"copies\"}, {\"if\"",
        "{\"var\": \"copy_count\"}, {\"if\"",
        "computed:",
        "the computed fee names an unknown field `copy_count`",
    ),
    // --- fee breakdowns -------------------------------------------------------------------
    case(
        K,
        "\"electronic_code\"]}, 400, 450]",
        "\"electronic_code\"]}, 400, 450.5]",
        "computed:",
        "the computed fee gives 450.5 yen, not a whole number",
    ),
    case(
        K,
        "\"electronic_code\"]}, 400, 450]",
        "\"electronic_code\"]}, 400, {\"-\": [450, {\"*\": [{\"var\": \"copies\"}, 100]}]}]",
        "computed:",
        "a negative amount for example 1 with copies = 10",
    ),
    case(
        K,
        "    - rate: standard_letter",
        "    - rate: letter",
        "",
        "unknown postage rate `letter` (the rates in catalog.yaml are",
    ),
    case(
        K,
        "    - rate: standard_letter",
        "    - rate: standard_letter\n      yen: 100",
        "",
        "its price and name come from catalog.yaml `postage`",
    ),
    case(
        K,
        "      evidence: exemption_evidence",
        "      evidence: evidence_file",
        "",
        "evidence names an unknown field `evidence_file`",
    ),
    case(
        K,
        "    breakdown: {fee: 900, standard_letter: 110, total: 1010}",
        "    breakdown: {fee: 900, total: 900}",
        "",
        "the breakdown is {fee: 900, standard_letter: 110, total: 1010}, expected {fee: 900, total: 900}",
    ),
    case(
        K,
        "    breakdown: {fee: 900, standard_letter: 110, total: 1010}\n",
        "",
        "- name: two full certificates for a passport",
        "the form has a `fee`, so a valid example declares its `breakdown`",
    ),
    case(
        K,
        "payment:\n  timing: at_submit",
        "payment:\n  timing: on_delivery",
        "timing:",
        "`timing`",
    ),
    // --- examples ------------------------------------------------------------------------
    case(
        J,
        "      - {path: /copies, code: too_large}",
        "      - {path: /copies, code: too_big}",
        "",
        "unknown error code `too_big`",
    ),
    case(
        J,
        "      - {path: /purpose, code: invalid_option}",
        "      - {path: purpose, code: invalid_option}",
        "",
        "an error path is a JSON pointer",
    ),
    case(
        J,
        "    fee: 600",
        "    fee: 900",
        "",
        "fee is 600 yen, expected 900",
    ),
    case(
        J,
        "      - {path: /copies, code: required}\n",
        "",
        "- name: missing copies",
        "does not behave as declared",
    ),
    case(
        J,
        "    valid: true\n    fee: 600",
        "    valid: yes\n    fee: 600",
        "valid: yes",
        "`valid`: expected true or false, found the text \"yes\"",
    ),
    case(
        K,
        "    as_of: \"2026-11-01\"",
        "    as_of: \"2026-13-01\"",
        "",
        "expected a date written YYYY-MM-DD",
    ),
    case(
        J,
        "    valid: true\n    fee: 600",
        "    valid: true\n    queue: nowhere\n    fee: 600",
        "queue: nowhere",
        "unknown queue `nowhere`",
    ),
    // --- blocks: reported once, at the block ---------------------------------------------
    case(
        APPLICANT,
        "    type: text",
        "    typ: text",
        "",
        "unknown key `typ`",
    ),
    case(
        APPLICANT,
        "    type: text",
        "    type: txt",
        "",
        "`txt` is not one of the choices",
    ),
    case(
        APPLICANT,
        "  - id: applicant_kana",
        "  - id: applicant_name",
        "",
        "field id `applicant_name` appears twice",
    ),
    case(
        APPLICANT,
        "    type: text",
        "    type: text\n    show_if: {\"var\": \"applicant_age\"}",
        "show_if:",
        "names an unknown field `applicant_age`",
    ),
    case(
        POSTAL,
        "show_if: {\"==\": [{\"var\": \"delivery_method\"}, \"post_other_address\"]}",
        "show_if: {\"==\": [{\"var\": \"delivery_methd\"}, \"post_other_address\"]}",
        "",
        "names an unknown field `delivery_methd`",
    ),
    case(
        POSTAL,
        "show_if: {\"==\": [{\"var\": \"delivery_method\"}, \"post_other_address\"]}",
        "show_if: {\"==\": [{\"var\": \"delivery_method\"}, \"post_elsewhere\"]}",
        "",
        "not one of its options (post_registered_address, post_other_address, counter)",
    ),
    case(
        POSTAL,
        "      - {value: counter,",
        "      - {value: post_other_address,",
        "",
        "option `post_other_address` appears twice",
    ),
    case(
        PERSON,
        "fields:\n",
        "fields:\n  - include: person\n",
        "  - include: person",
        "circular include: _blocks/person.yaml includes _blocks/person.yaml",
    ),
    case(
        PAYEE,
        "fields:\n",
        "fields:\n  - include: nothing\n",
        "include: nothing",
        "unknown block `nothing`",
    ),
    case(
        PERSON,
        "    type: text",
        "    type: text: bad",
        "",
        "YAML syntax",
    ),
    case(
        PAYEE,
        "fields:\n",
        "field:\n",
        "",
        "unknown key `field`; the keys here are fields",
    ),
    // --- catalog.yaml --------------------------------------------------------------------
    case(
        CATALOG_FILE,
        "email: zeimu@city.example.lg.jp",
        "email: zeimu",
        "email: zeimu}",
        "division `zeimu` needs a valid email address",
    ),
    case(
        CATALOG_FILE,
        "{division: kosodate,",
        "{division: kosodat,",
        "",
        "queue `kosodate-hoiku` names an unknown division `kosodat`",
    ),
    case(
        CATALOG_FILE,
        "  koseki: {ja: 戸籍, en: Family register}",
        "  koseki: {ja: 戸籍, en: Family register, fr: État civil}",
        "",
        "`fr` would never be shown",
    ),
    case(
        CATALOG_FILE,
        "  zeimu: {name: {ja: 税務課,",
        "  zeimu: {name: {ja: \"\",",
        "",
        "the ja text is empty",
    ),
    case(
        CATALOG_FILE,
        "categories:",
        "categorys:",
        "",
        "unknown key `categorys`",
    ),
    case(
        CATALOG_FILE,
        ", address: 石川県加賀市}",
        "}",
        "city:",
        "missing key `address`",
    ),
    // Without the city's address, "residents" cannot be told: the form relying on it is blamed.
    Case {
        file: CATALOG_FILE,
        find: "city: {name: {ja: 加賀市, en: Kaga City}, address: 石川県加賀市}",
        replace: "",
        at: "",
        message: "`who: residents` needs the city's address in catalog.yaml",
        reported_in: Some(J),
    },
    case(
        CATALOG_FILE,
        "queues:\n",
        "queues:\n  kosodate: {division: kosodate, name: {ja: 子育て, en: Child-rearing}}\n",
        "  kosodate: {division",
        "queue `kosodate` has the same id as a division",
    ),
];

/// A catalog in a temporary folder holding [`FILES`] as they are in `forms/`.
fn scratch() -> tempfile::TempDir {
    scratch_of(&FILES)
}

/// A catalog in a temporary folder holding `files` as they are in `forms/`.
fn scratch_of(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in files {
        let target = dir.path().join(file);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("folders");
        std::fs::copy(Path::new("forms").join(file), target).expect("copy");
    }
    dir
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .map_or(0, |index| index + 1)
}

fn check(dir: &Path) -> Vec<Problem> {
    std::panic::catch_unwind(|| lint::check_catalog(dir, &[]))
        .unwrap_or_else(|_| panic!("the checker panicked"))
        .map(|_| Vec::new())
        .unwrap_or_else(|report| report.problems)
}

fn relative(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir).unwrap_or(file).display().to_string()
}

#[test]
fn the_scratch_catalog_is_clean() {
    let dir = scratch();
    let problems = check(dir.path());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_one_mistake_definition_is_reported_at_its_file_and_line() {
    assert!(CASES.len() >= 80, "{} cases", CASES.len());
    let mut failures = Vec::new();
    for (index, case) in CASES.iter().enumerate() {
        let dir = scratch();
        let path = dir.path().join(case.file);
        let original = std::fs::read_to_string(&path).expect("read");
        assert!(
            original.contains(case.find),
            "case {index}: `{}` is not in {}",
            case.find,
            case.file
        );
        let edited = original.replacen(case.find, case.replace, 1);
        std::fs::write(&path, &edited).expect("write");
        let expected_line = if let Some(other) = case.reported_in {
            line_of(
                &std::fs::read_to_string(dir.path().join(other)).expect("read"),
                "  who: residents",
            )
        } else if case.at.is_empty() {
            let start = original.find(case.find).expect("found");
            edited[..start].lines().count()
                + usize::from(edited[..start].ends_with('\n') || start == 0)
        } else {
            line_of(&edited, case.at)
        };
        let expected_file = case.reported_in.unwrap_or(case.file);
        let problems = check(dir.path());
        let found = problems.iter().any(|problem| {
            relative(dir.path(), &problem.file) == expected_file
                && problem.line == expected_line
                && problem.message.contains(case.message)
        });
        let elsewhere: Vec<&Problem> = problems
            .iter()
            .filter(|problem| relative(dir.path(), &problem.file) != expected_file)
            .collect();
        let rust_words = problems.iter().any(|problem| {
            ["u32", "u64", "usize", "variant", "struct ", "sequence"]
                .iter()
                .any(|word| problem.message.contains(word))
        });
        if !found || !elsewhere.is_empty() || rust_words {
            failures.push(format!(
                "case {index} ({}: `{}` -> `{}`): expected {expected_file}:{expected_line}: …{}…\n  got: {:#?}",
                case.file,
                case.find.lines().next().unwrap_or_default(),
                case.replace.lines().next().unwrap_or_default(),
                case.message,
                problems
                    .iter()
                    .map(|p| format!("{}:{}: {}", relative(dir.path(), &p.file), p.line, p.message))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn a_cycle_between_two_blocks_is_one_message_naming_both_files() {
    let dir = scratch();
    let applicant = dir.path().join(APPLICANT);
    let text = std::fs::read_to_string(&applicant).expect("read");
    std::fs::write(
        &applicant,
        text.replacen("fields:\n", "fields:\n  - include: postal-delivery\n", 1),
    )
    .expect("write");
    let postal = dir.path().join(POSTAL);
    let text = std::fs::read_to_string(&postal).expect("read");
    std::fs::write(
        &postal,
        text.replacen("fields:\n", "fields:\n  - include: applicant\n", 1),
    )
    .expect("write");
    let problems = check(dir.path());
    let cycles: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.message.contains("circular include"))
        .collect();
    assert_eq!(cycles.len(), 1, "{problems:#?}");
    assert!(
        cycles[0].message.contains("_blocks/applicant.yaml"),
        "{problems:#?}"
    );
    assert!(
        cycles[0].message.contains("_blocks/postal-delivery.yaml"),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .all(|p| p.file.to_string_lossy().contains("_blocks")),
        "definitions are not blamed: {problems:#?}"
    );
}

#[test]
fn a_duplicate_procedure_id_in_another_file_is_seen_when_checking_one_file() {
    let dir = scratch();
    let copy = dir.path().join("koseki/juminhyo-copy-request.yaml");
    std::fs::copy(dir.path().join(J), &copy).expect("copy");
    let problems = lint::check_catalog(dir.path(), &[dir.path().join(J)])
        .err()
        .map(|report| report.problems)
        .unwrap_or_default();
    assert!(
        problems.iter().any(|p| p.file == dir.path().join(J)
            && p.line == 2
            && p.message.contains("also used by")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().all(|p| p.file == dir.path().join(J)),
        "only the chosen file is reported: {problems:#?}"
    );
}

/// Every prefix and every one-line deletion of real files: the checker reports, never panics.
#[test]
fn the_checker_never_panics_on_truncated_or_mangled_files() {
    for file in [J, K, APPLICANT, CATALOG_FILE] {
        // The organisation, the blocks and the one definition: enough, and fast.
        let dir = scratch_of(&[
            CATALOG_FILE,
            APPLICANT,
            PERSON,
            POSTAL,
            PAYEE,
            if file == K { K } else { J },
        ]);
        let path = dir.path().join(file);
        let original = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = original.lines().collect();
        for cut in 0..lines.len() {
            let variants = [
                lines[..cut].join("\n"),
                lines
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| *index != cut)
                    .map(|(_, line)| *line)
                    .collect::<Vec<_>>()
                    .join("\n"),
                lines
                    .iter()
                    .enumerate()
                    .map(|(index, line)| {
                        if index == cut {
                            line.replacen(':', "", 1)
                        } else {
                            (*line).to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ];
            for variant in variants {
                std::fs::write(&path, &variant).expect("write");
                let problems = check(dir.path());
                for problem in problems {
                    assert!(problem.line >= 1, "{problem:?}");
                }
            }
        }
    }
}

#[test]
fn hostile_yaml_is_a_message() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    let deep_condition = format!(
        "show_if: {}true{}",
        "{\"!\": [".repeat(2000),
        "]}".repeat(2000)
    );
    for text in [
        deep.as_str(),
        laughs,
        "",
        "- a list\n",
        "just text",
        "\u{0}\u{1}",
        "id: [unclosed",
        deep_condition.as_str(),
    ] {
        let dir = scratch();
        std::fs::write(dir.path().join(J), text).expect("write");
        let problems = check(dir.path());
        assert!(
            problems
                .iter()
                .any(|p| p.file == dir.path().join(J) && !p.message.is_empty()),
            "{text:.40}: {problems:#?}"
        );
    }
    let dir = scratch();
    std::fs::write(dir.path().join(J), [0xff_u8, 0xfe, 0x00]).expect("write");
    assert!(
        check(dir.path())
            .iter()
            .any(|p| p.message.contains("not UTF-8"))
    );
}

fn forms_check(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(["forms", "check"])
        .args(args)
        .output()
        .expect("run madoguchi");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn forms_check_takes_a_catalog_folder() {
    let dir = scratch();
    let path = dir.path().join(J);
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replacen("version: 1", "version: 0", 1)).expect("write");
    let (code, stdout, _) = forms_check(&[dir.path().as_os_str()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!("{}:3: `version` starts at 1", path.display())),
        "{stdout}"
    );
    // The real catalog, named as a folder, is clean.
    let (code, stdout, stderr) = forms_check(&[std::ffi::OsStr::new("forms")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn forms_check_refuses_a_path_that_does_not_exist() {
    let (code, _, stderr) =
        forms_check(&[std::ffi::OsStr::new("forms/juminhyo/no-such-form.yaml")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no-such-form.yaml: no such file or folder"),
        "{stderr}"
    );
    let empty = tempfile::tempdir().expect("tempdir");
    let (code, _, stderr) = forms_check(&[empty.path().as_os_str()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a catalog folder"), "{stderr}");
}

#[test]
fn forms_check_takes_a_block_or_catalog_yaml_on_its_own() {
    let dir = scratch();
    let block = dir.path().join(APPLICANT);
    let text = std::fs::read_to_string(&block).expect("read");
    std::fs::write(&block, text.replacen("    type: text", "    typ: text", 1)).expect("write");
    let (code, stdout, _) = forms_check(&[block.as_os_str()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}:{}: unknown key `typ`",
            block.display(),
            line_of(&std::fs::read_to_string(&block).expect("read"), "typ: text")
        )),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "one message, at the block: {stdout}"
    );

    let catalog: PathBuf = dir.path().join(CATALOG_FILE);
    let (code, stdout, _) = forms_check(&[catalog.as_os_str()]);
    assert_eq!(code, 0, "catalog.yaml itself is fine: {stdout}");
    let text = std::fs::read_to_string(&catalog).expect("read");
    std::fs::write(
        &catalog,
        text.replacen("email: zeimu@city.example.lg.jp", "email: zeimu", 1),
    )
    .expect("write");
    let (code, stdout, _) = forms_check(&[catalog.as_os_str()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("division `zeimu` needs a valid email address"),
        "{stdout}"
    );
}

/// Mistakes a JSON Schema can express, by a fragment of the checker's message: the editor
/// schema of the edited file must refuse each of these cases too.
const SCHEMA_CATCHES: &[&str] = &[
    "`version` starts at 1",
    "expected a whole number",
    "must be kebab-case",
    "unknown key",
    "missing key",
    "is not one of the choices",
    "would never be shown",
    "text is empty",
    "expected true or false",
    "is at most",
    "must be snake_case",
    "allows no text",
    "allows nothing",
    "expected a text",
    "lists nothing",
    "must be at least 1",
    "may use only a-z",
    "unknown error code",
    "an error path is a JSON pointer",
    "expected a date written",
    "an option needs a `value`",
    "takes no other keys",
    "a text is not evaluated",
    "must be a JSON Logic condition",
    "never below 0",
    "must be a whole number for type",
    "must be a number, found",
    "the date limit the text \"yesterday\"",
    "the date limit the text \"today+1w\"",
    "the date limit the number",
    "a computed fee must be",
    "a form with `requesters` needs",
    "`third_party` may not request",
];

fn editor_schema(file: &str) -> serde_json::Value {
    let name = if file == CATALOG_FILE {
        "catalog.schema.json"
    } else if file.starts_with("_blocks/") {
        "block.schema.json"
    } else {
        "form-definition.schema.json"
    };
    serde_json::from_str(&std::fs::read_to_string(Path::new("forms").join(name)).expect("schema"))
        .expect("schema is JSON")
}

#[test]
fn the_editor_schemas_refuse_the_mistakes_a_schema_can_express() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (index, case) in CASES.iter().enumerate() {
        if !SCHEMA_CATCHES
            .iter()
            .any(|fragment| case.message.contains(fragment))
        {
            continue;
        }
        let original = std::fs::read_to_string(Path::new("forms").join(case.file)).expect("read");
        let edited = original.replacen(case.find, case.replace, 1);
        let Ok(document) = madoguchi::forms::source::SourceDocument::parse(&edited) else {
            continue;
        };
        let schema = editor_schema(case.file);
        let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
        checked += 1;
        if validator.is_valid(&document.value) {
            failures.push(format!("case {index} ({}): {}", case.file, case.message));
        }
    }
    assert!(checked >= 40, "{checked} cases");
    assert!(
        failures.is_empty(),
        "the schema accepts:\n{}",
        failures.join("\n")
    );
}

#[test]
fn blocks_and_catalog_yaml_match_their_editor_schemas() {
    let form = editor_schema(J);
    let block = editor_schema(APPLICANT);
    assert_eq!(
        form["$defs"], block["$defs"],
        "block.schema.json's $defs must equal form-definition.schema.json's"
    );
    for file in [CATALOG_FILE, APPLICANT, PERSON, POSTAL, PAYEE] {
        let text = std::fs::read_to_string(Path::new("forms").join(file)).expect("read");
        let expected = if file == CATALOG_FILE {
            "# yaml-language-server: $schema=./catalog.schema.json"
        } else {
            "# yaml-language-server: $schema=../block.schema.json"
        };
        assert_eq!(text.lines().next(), Some(expected), "{file}: the modeline");
        let document = madoguchi::forms::source::SourceDocument::parse(&text).expect("parse");
        let schema = editor_schema(file);
        let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&document.value)
            .map(|error| format!("{error} at {}", error.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:#?}");
    }
}
