"""The `qabot` command line: build and check the index, ask, chat, evaluate, report, run the bots.

Exit codes: 0 answered (or abstained), 1 a build or run failed, 2 usage error (or missing
configuration), 3 index missing, corrupt or built for another model (the message says the fix).
Heavy modules (torch, the index builder, chat SDKs) are imported inside the commands that need them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.adapters.registry import ADAPTERS
from bot.core.errors import BuildError, BuildInProgressError, IndexProblem, QabotError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INDEX = 3

app = typer.Typer(
    name="qabot",
    help="Answers questions about a knowledge folder by quoting the passages that answer them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
index_app = typer.Typer(help="Build, inspect, verify and roll back the index.", no_args_is_help=True)
feedback_app = typer.Typer(help="What users rated and what went unanswered.", no_args_is_help=True)
taught_app = typer.Typer(help="What admins taught with “Teach qabot” (docs/teach.md).", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(feedback_app, name="feedback")
app.add_typer(taught_app, name="taught")

log = logging.getLogger("qabot")


_settings_cache = None


def _settings():
    """Settings from the environment and .env, read once (paths, feedback database, tokens)."""
    global _settings_cache
    if _settings_cache is None:
        from bot.config import ConfigError, Settings

        try:
            _settings_cache = Settings.from_env()
        except ConfigError as err:
            raise _fail(str(err), EXIT_USAGE) from None
    return _settings_cache


IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index folder [env QABOT_INDEX_DIR, default ./index].")]
KnowledgeOpt = Annotated[
    Path | None,
    typer.Option("--knowledge", help="Knowledge folder [env QABOT_KNOWLEDGE_DIR, default ./knowledge]."),
]


def _index_dir(value: Path | None) -> Path:
    return value or _settings().index_dir


def _knowledge_dir(value: Path | None) -> Path:
    return value or _settings().knowledge_dir


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"qabot: {message}", err=True)
    return typer.Exit(code)


def _load_engine(index_dir: Path):
    from bot.core.engine import EngineHolder

    holder = EngineHolder(index_dir)
    try:
        holder.get()
    except IndexProblem as err:
        raise _fail(str(err), EXIT_INDEX) from None
    return holder


def _run_build(knowledge: Path, index: Path, *, force: bool, quiet: bool, profile: str | None = None) -> None:
    from index_builder.build import build_index
    from index_builder.sources import SourceLimits

    limits = SourceLimits.from_settings(_settings())
    with _replicas() as shared:
        try:
            result = build_index(
                knowledge,
                index,
                force=force,
                profile=profile,
                show_progress=not quiet and sys.stderr.isatty(),
                limits=limits,
            )
        except BuildInProgressError as err:
            raise _fail(str(err), EXIT_FAILED) from None
        except BuildError as err:
            raise _fail(str(err), EXIT_FAILED) from None
        if not result.skipped:
            shared.announcer.announce(result.version_id)
    if result.skipped:
        typer.echo(f"Index {result.version_id} is up to date ({result.passage_count} passages); nothing to do.")
    else:
        typer.echo(
            f"Built index {result.version_id}: {result.documents} document(s), {result.passage_count} passages "
            f"in {result.took_s:.1f} s."
        )
    for warning in result.warnings:  # files refused, paragraphs skipped, words in no passage
        typer.echo(f"warning: {warning}", err=True)
    if not result.skipped:
        from bot.conversation.teach import build_note

        note = build_note(_settings(), index)  # taught pairs whose passage this index lost
        if note:
            typer.echo(f"warning: {note}", err=True)


@contextlib.contextmanager
def _replicas():
    """The state shared with running replicas (QABOT_REDIS_URL): a build or rollback from the command line
    takes the same rebuild lock as `/qabot reindex` and announces the version it switched to."""
    from bot.state.shared import SharedState

    shared = SharedState.from_settings(_settings())
    try:
        with shared.rebuild_lock.hold() as mine:
            if not mine:
                raise _fail("A rebuild is already running on a replica; try again when it has finished.", EXIT_FAILED)
            yield shared
    finally:
        shared.close()


# ---------------------------------------------------------------- taught


@taught_app.command("list")
def taught_list(
    index: IndexOpt = None, as_json: Annotated[bool, typer.Option("--json", help="Print the pairs as JSON.")] = False
) -> None:
    """List the taught pairs (id, question, passage or "not covered", who, when, and whether the index still has
    the passage)."""
    from bot.config import ConfigError
    from bot.conversation.feedback import FeedbackDatabaseError
    from bot.conversation.teach import format_pairs, taught_list

    try:
        data = taught_list(_settings(), _index_dir(index))
    except (ConfigError, FeedbackDatabaseError) as err:
        raise _fail(str(err), EXIT_USAGE) from None
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else format_pairs(data))


@taught_app.command("undo")
def taught_undo(
    pair_id: Annotated[int, typer.Argument(help="The id `qabot taught list` shows.", min=1)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the removed pair as JSON.")] = False,
) -> None:
    """Remove a taught pair: it no longer steers answers (a running bot notices within 30 s)."""
    from bot.config import ConfigError
    from bot.conversation.feedback import FeedbackDatabaseError
    from bot.conversation.teach import pairs_data, taught_undo

    try:
        removed = taught_undo(_settings(), pair_id)
    except (ConfigError, FeedbackDatabaseError) as err:
        raise _fail(str(err), EXIT_USAGE) from None
    if removed is None:
        raise _fail(f"there is no taught pair #{pair_id} (`qabot taught list` lists them)", EXIT_FAILED)
    if as_json:
        typer.echo(json.dumps(pairs_data([removed], None)[0] | {"status": "undone"}, ensure_ascii=False, indent=2))
    else:
        typer.echo(f"Undone: taught pair #{pair_id} no longer steers answers.")


# ---------------------------------------------------------------- index


@index_app.command("build")
def index_build(
    knowledge: KnowledgeOpt = None,
    index: IndexOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if nothing changed.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="Encoders and answer settings: default, balanced or fast [env QABOT_PROFILE]."),
    ] = None,
) -> None:
    """Parse the knowledge, embed it and switch the index to the new version atomically."""
    _run_build(_knowledge_dir(knowledge), _index_dir(index), force=force, quiet=quiet, profile=profile)


@index_app.command("info")
def index_info(
    index: IndexOpt = None, as_json: Annotated[bool, typer.Option("--json", help="Print the manifest.")] = False
) -> None:
    """Show the current index version, documents, passages, model and build time."""
    from bot.core.index_store import current_version_dir, read_manifest
    from index_builder.store import list_versions

    index_dir = _index_dir(index)
    try:
        manifest = read_manifest(current_version_dir(index_dir))
    except IndexProblem as err:
        raise _fail(str(err), EXIT_INDEX) from None
    if as_json:
        typer.echo(json.dumps(manifest, indent=2, ensure_ascii=False))
        return
    from bot.adapters.console import console_for, index_info_renderable, styled

    console = console_for(sys.stdout)
    if styled(console):
        console.print(index_info_renderable(manifest, [p.name for p in list_versions(index_dir)]))
        return
    typer.echo(f"index version   {manifest['index_version']}")
    typer.echo(f"built at        {manifest['built_at']} in {manifest['build_seconds']} s")
    typer.echo(f"profile         {manifest.get('profile', '?')}")
    for enc in manifest.get("encoders", []):
        search = manifest.get("search", {}).get(enc["id"], {})
        typer.echo(
            f"encoder {enc['id']:8s} {enc['model_name']} ({enc['dim']} dims, {enc['runtime']}, "
            f"{search.get('faiss_index', '?')}{', token vectors' if enc.get('token_vectors') else ''})"
        )
    typer.echo(f"passages        {manifest['passage_count']} ({manifest['sentence_count']} sentences)")
    typer.echo(f"lexical         {manifest['lexical']}")
    typer.echo("documents")
    for doc in manifest["documents"]:
        typer.echo(f"  {doc['path']}  {doc['title']}  ({doc['passages']} passages, sha256 {doc['sha256'][:12]})")
    versions = [p.name for p in list_versions(index_dir)]
    typer.echo(f"versions kept   {', '.join(versions)}")


@index_app.command("verify")
def index_verify(index: IndexOpt = None) -> None:
    """Check the manifest (checksum, schema), every file's checksum, then load every encoder and ask a probe question."""
    from bot.core.index_store import MANIFEST, check_files, current_version_dir, read_manifest
    from bot.core.manifest import SchemaError, parse_manifest
    from bot.core.probe import load_and_probe

    index_dir = _index_dir(index)
    try:
        version_dir = current_version_dir(index_dir)
    except IndexProblem as err:
        raise _fail(str(err), EXIT_INDEX) from None
    problems: list[str] = []
    manifest = None
    try:
        manifest = read_manifest(version_dir)
    except IndexProblem as err:
        problems.append(err.message)
        try:  # a manifest that fails its checksum but still parses: say what else disagrees with it
            raw = (version_dir / MANIFEST).read_bytes()
            parse_manifest(raw)
            manifest = json.loads(raw)
        except (OSError, SchemaError):
            pass
    if manifest is not None:
        problems += check_files(version_dir, manifest)
    if not problems:
        try:
            load_and_probe(version_dir)
        except IndexProblem as err:
            problems.append(err.message)
    if problems or manifest is None:
        typer.echo(f"Index {version_dir.name} FAILED verification:", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        raise _fail("Run `qabot index build --force` to rebuild it.", EXIT_INDEX)
    typer.echo(
        f"Index {manifest['index_version']} OK: the manifest and its {len(manifest['files'])} files match their "
        "checksums, and it answers a probe question."
    )


@index_app.command("rollback")
def index_rollback(index: IndexOpt = None) -> None:
    """Switch back to the previous index version."""
    from index_builder.store import rollback

    with _replicas() as shared:
        try:
            version = rollback(_index_dir(index))
        except (BuildError, BuildInProgressError) as err:
            raise _fail(str(err), EXIT_FAILED) from None
        except IndexProblem as err:
            raise _fail(str(err), EXIT_INDEX) from None
        shared.announcer.announce(version)
    typer.echo(f"Rolled back: the index now serves {version}.")


# ---------------------------------------------------------------- asking


def _read_stdin_lines():
    """Lines of stdin as text; invalid UTF-8 becomes U+FFFD instead of an error."""
    import io

    stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline=None)
    for line in stream:
        yield line.rstrip("\n")


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help='The question, or "-" to read one question per line from stdin.')],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per answer (JSON Lines).")] = False,
    index: IndexOpt = None,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            help="An earlier question of the conversation (repeat for several, oldest first); the question "
            'is answered as its follow-up. With "-", a line may also be {"q": ..., "context": [...]}.',
        ),
    ] = None,
) -> None:
    """Answer one question (or every line of stdin with "-") by quoting the knowledge."""
    from bot.adapters.console import answer_footer, answer_renderable, console_for, styled
    from bot.core.render import render_plain

    if question != "-" and not question.strip():
        raise _fail('ask needs a question, e.g. qabot ask "What is generative AI?"', EXIT_USAGE)
    holder = _load_engine(_index_dir(index))
    questions = _read_stdin_lines() if question == "-" else [question]
    console = console_for(sys.stdout)
    for line in questions:
        q, earlier = _question_and_context(line, list(context or []), from_stdin=question == "-")
        answer = holder.answer(q, _turns(holder, earlier))
        if as_json:
            sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif styled(console):  # a person at a terminal: laid out and coloured
            console.print(answer_renderable(answer))
            console.print(answer_footer(answer))
            if question == "-":
                console.print()
        else:
            typer.echo(render_plain(answer))
            typer.echo(f"({answer.took_ms:.1f} ms · index {answer.index_version})")
            if question == "-":
                typer.echo("")


def _question_and_context(line: str, context: list[str], *, from_stdin: bool) -> tuple[str, list[str]]:
    """A stdin line is a question, or a JSON object {"q": ..., "context": [...]} (a follow-up)."""
    if from_stdin and line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
            if isinstance(obj, dict) and isinstance(obj.get("q"), str):
                extra = obj.get("context") or []
                if isinstance(extra, str):
                    extra = [extra]
                return obj["q"], context + [str(c) for c in extra if isinstance(c, str | int | float)]
        except ValueError:
            pass  # not JSON after all: the line is the question
    return line, context


def _turns(holder, earlier: list[str]):
    """Earlier questions as conversation turns: each is asked, in order, for the passages it quotes."""
    from bot.core.types import Turn

    turns: list[Turn] = []
    for q in earlier:
        if q.strip():
            turns.append(Turn(q, holder.answer(q, tuple(turns)).passage_ids))
    return tuple(turns)


@app.command("chat")
def chat(index: IndexOpt = None, knowledge: KnowledgeOpt = None) -> None:
    """Interactive session in the terminal (also reads questions from a pipe). Builds the index if there is none."""
    from bot.core.errors import IndexMissingError
    from bot.core.index_store import current_version_dir

    index_dir, knowledge_dir = _index_dir(index), _knowledge_dir(knowledge)
    try:
        current_version_dir(index_dir)
    except IndexMissingError:
        typer.echo(f"No index yet: building it from {knowledge_dir}/ first (about 20 s, once).", err=True)
        _run_build(knowledge_dir, index_dir, force=False, quiet=False)
    except IndexProblem as err:
        raise _fail(str(err), EXIT_INDEX) from None
    from bot.adapters.registry import run_adapter
    from bot.config import ConfigError, Settings
    from bot.conversation.feedback import FeedbackDatabaseError

    try:
        settings = Settings.from_env(overrides={"index_dir": index_dir, "knowledge_dir": knowledge_dir})
        run_adapter("terminal", settings)
    except (ConfigError, FeedbackDatabaseError) as err:
        raise _fail(str(err), EXIT_USAGE) from None
    except IndexProblem as err:
        raise _fail(str(err), EXIT_INDEX) from None


@app.command("eval")
def eval_cmd(
    file: Annotated[Path, typer.Argument(help='JSON Lines: {"q": "...", "gold": ["phrase", ...]}; [] = off-topic.')],
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    misses: Annotated[bool, typer.Option("--misses", help="List the questions that missed.")] = False,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option("--compare", help="Two index folders (e.g. built with two profiles), side by side."),
    ] = None,
) -> None:
    """Measure answer quality: hit@k, MRR, abstention, confidence calibration, per style and follow-ups."""
    from bot.core.evaluate import EvalFileError, evaluate, load_eval_file
    from bot.core.evaluate import compare as compare_indexes

    try:
        items = load_eval_file(file)
    except (OSError, EvalFileError) as err:
        raise _fail(str(err), EXIT_USAGE) from None
    if compare:
        a, b = (_load_engine(p) for p in compare)
        result = compare_indexes(items, a.answer, b.answer)
        if as_json:
            data = {"a": result.a.to_dict(), "b": result.b.to_dict(), "won": result.won, "lost": result.lost}
            typer.echo(json.dumps(data | {"both": result.both, "neither": result.neither}, indent=2))
            return
        typer.echo(result.format(str(compare[0]), str(compare[1])))
        return
    holder = _load_engine(_index_dir(index))
    report = evaluate(items, holder.answer)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(report.format())
    if misses:
        for miss in report.misses:
            typer.echo(f"  miss [{miss['style'] or '-'}]: {miss['q']!r}: {miss['why']}; first quote: {miss['first']!r}")


# ---------------------------------------------------------------- feedback and bots


@feedback_app.command("report")
def feedback_report(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only questions asked since: 7d, 24h, 30m or a date (2026-11-01).")
    ] = None,
    index: IndexOpt = None,
) -> None:
    """The worst-rated answers and the knowledge gaps: questions not answered or given a 👎, grouped by meaning."""
    from bot.adapters.console import console_for, feedback_report_renderable, styled
    from bot.config import ConfigError
    from bot.conversation.feedback import FeedbackDatabaseError
    from bot.conversation.report import feedback_report_data, feedback_report_text, parse_since

    console = console_for(sys.stdout)
    try:
        start = parse_since(since) if since else None
    except ValueError as err:
        raise _fail(str(err), EXIT_USAGE) from None

    def embed(texts):  # only questions stored without a vector need the encoder (and the index loaded)
        from bot.core.engine import EngineHolder

        return EngineHolder(_index_dir(index)).embed_questions(texts)

    try:
        report = None
        if not as_json and styled(console):
            report = feedback_report_data(_settings(), since=start, embed=embed)
        if report is not None:
            console.print(feedback_report_renderable(report))
        else:
            typer.echo(feedback_report_text(_settings(), since=start, as_json=as_json, embed=embed))
    except (ConfigError, FeedbackDatabaseError) as err:
        raise _fail(str(err), EXIT_USAGE) from None


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help=f"The front end: {', '.join(ADAPTERS)}.")],
    http: Annotated[
        int | None,
        typer.Option(
            "--http", help="Receive the platform's events over HTTP on this port (Slack: needs SLACK_SIGNING_SECRET)."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="With --http: the address to listen on (default 127.0.0.1, for a reverse proxy on the same "
            "host; 0.0.0.0 listens on every interface, e.g. in a container).",
        ),
    ] = None,
) -> None:
    """Run a front end until stopped: `qabot run slack` (Socket Mode unless --http PORT), `qabot run discord`."""
    from bot.adapters.registry import AdapterOptionError, run_adapter
    from bot.config import ConfigError
    from bot.conversation.feedback import FeedbackDatabaseError
    from bot.conversation.privacy import Pseudonymizer, configure_service_logging, warn_if_ephemeral

    settings = _settings()
    # a long-running service: timestamps on every line; SDK debug output (raw payloads) stays off
    configure_service_logging(settings.log_level)
    warn_if_ephemeral(Pseudonymizer(settings.secret_key), log)
    if host is not None and http is None:
        raise _fail("--host goes with --http PORT (HTTP mode).", EXIT_USAGE)
    try:
        run_adapter(name, settings, http_port=http, http_host=host)
    except AdapterOptionError:
        raise _fail(f"{name} has no HTTP mode (--http, --host).", EXIT_USAGE) from None
    except ConfigError as err:
        raise _fail(str(err), EXIT_USAGE) from None
    except IndexProblem as err:
        raise _fail(str(err), EXIT_INDEX) from None
    except FeedbackDatabaseError as err:  # the database (a file, or the server of QABOT_DATABASE_URL)
        raise _fail(str(err), EXIT_USAGE) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as err:  # e.g. no network: say what failed, keep the traceback for --log-level DEBUG
        log.debug("the %s bot stopped", name, exc_info=True)
        if not _is_network_error(err):
            raise _fail(
                f"the {name} bot stopped because of a problem on this machine: {type(err).__name__}: {err}. "
                "Set QABOT_LOG_LEVEL=DEBUG for details.",
                EXIT_FAILED,
            ) from None
        raise _fail(
            f"the {name} bot stopped: {type(err).__name__}: {err}. Is {name} reachable from this machine "
            "(network, proxy, firewall)? Set QABOT_LOG_LEVEL=DEBUG for details.",
            EXIT_FAILED,
        ) from None


def _is_network_error(err: BaseException) -> bool:
    """True for failures of the connection to Slack/Discord (DNS, refused, TLS, timeouts, HTTP errors)."""
    import socket
    import ssl

    network: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror, ssl.SSLError)
    try:
        import aiohttp

        network += (aiohttp.ClientError,)
    except ImportError:  # pragma: no cover - aiohttp comes with both SDKs
        pass
    remote_modules = ("discord", "slack_sdk", "slack_bolt", "aiohttp", "websockets")
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:  # the SDKs wrap the socket error
        seen.add(id(cause))
        if isinstance(cause, network) or type(cause).__module__.split(".")[0] in remote_modules:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="qabot: %(levelname)s %(name)s: %(message)s")
    try:
        app()
    except QabotError as err:  # anything the commands did not map: a message, never a traceback
        typer.echo(f"qabot: {err}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
