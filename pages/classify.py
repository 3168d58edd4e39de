"""Classify: an uploaded file, the live microphone, or a recorded clip."""

import logging
from functools import partial

import streamlit as st
import streamlit_webrtc as webrtc

from dashboard import state, style
from dashboard.charts import clock, ranking_figure, vote_text, window_figure
from dashboard.heard import heard_figure
from dashboard.song_map import song_map_figure
from genre import SAMPLE_RATE, WINDOW_SECONDS
from genre.audio.decode import AUDIO_SUFFIXES, AudioError
from genre.serve.heard import has_musicnn_front_end, segments
from genre.serve.live import check_take
from genre.serve.prediction import Classification

log = logging.getLogger(__name__)
MIC_KEY = "mic"
# Browsers clean up speech by default; all three would mangle music.
MIC_CONSTRAINTS = {
    "audio": {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": False},
    "video": False,
}
# No STUN/TURN: browser and server are on the same machine (or LAN), and it works offline.
RTC_CONFIGURATION = {"iceServers": []}
REFRESH_SECONDS = 0.5

state.require_entrypoint()
st.title("Classify")
run = state.selected_run()
if run is None:
    st.info("No trained model yet: the Overview page says how to train one.")
    st.stop()
if not run.servable:
    st.warning(
        f"Run `{run.run_id}` has no trained model to classify with ({run.state}). Pick another run in the sidebar."
    )
    st.stop()

with st.spinner(f"Loading model `{run.run_id}`…"):
    try:
        classifier = state.classifier(run)
        state.warm_up_audio()
    except Exception as error:
        log.exception("loading %s", run.path)
        st.error(f"The model of run `{run.run_id}` could not be loaded: {error}")
        st.stop()
st.caption(
    f"Model `{run.run_id}` ({len(classifier.genres)} genres: {', '.join(classifier.genres)}). "
    f"Audio is cut into {WINDOW_SECONDS} s windows; each window gets a probability per genre, and the "
    "song's genre is the one most windows vote for."
)


def show_result(result: Classification, key: str) -> None:
    """The song-level genre, the mean-probability ranking and the per-window bars."""
    windows = len(result.probabilities)
    won = int(result.votes[result.genres.index(result.vote_genre)])
    shown = result.calibrated_probability  # the run's calibration; votes are unchanged by it
    ranking = result.calibrated_ranking()
    calibrated = result.temperature != 1.0
    # Short card titles: a 1024 px window leaves each card about 170 px, help icon included.
    if result.uncertain:
        # Two genre names ("classical or country") do not fit a third of a 1024 px window: this card
        # gets its own row, the other two share the one below.
        headline = st.container()
        cols = [headline, *st.columns(2)]
        headline.metric(
            "Uncertain",
            f"{ranking[0][0]} or {ranking[1][0]}",
            border=True,
            help="The winner is not clearly ahead: its lead over the runner-up is below the margin chosen on the "
            "run's validation songs",
        )
        headline.caption(" · ".join(f"{g} {p:.0%}" for g, p in ranking[:3]))
        headline.caption(
            f"Majority vote: {result.vote_genre} ({won} of {windows} windows: "
            f"{vote_text(result.genres, result.votes, result.vote_genre)})"
        )
    else:
        cols = st.columns(3)
        cols[0].metric(
            "Majority vote",
            result.vote_genre,
            border=True,
            help="The genre most of the 3 s windows vote for: the song's genre",
        )
        cols[0].caption(f"{won} of {windows} windows: {vote_text(result.genres, result.votes, result.vote_genre)}")
    cols[1].metric(
        "Mean probability",
        result.mean_genre,
        border=True,
        help="The genre with the highest probability averaged over the windows"
        + (", calibrated on the run's validation songs" if calibrated else " (this run has no calibration)"),
    )
    cols[1].caption(f"{shown.max():.0%} averaged over the windows" + (", calibrated" if calibrated else ""))
    cols[2].metric("Length", clock(result.seconds), border=True)
    cols[2].caption(f"{windows} window{'s' if windows != 1 else ''} of {WINDOW_SECONDS} s")
    # One above the other: beside the window chart, the ranking was too narrow for its labels.
    st.markdown("##### Mean probability per genre")
    st.plotly_chart(ranking_figure(result.genres, shown, result.votes), key=f"{key}_ranking")
    st.markdown("##### Each 3 s window")
    st.plotly_chart(window_figure(result.genres, result.probabilities, result.starts), key=f"{key}_windows")
    # Drawn after the bars (the browser already shows them): these take a moment more.
    show_heard(result, key)
    show_on_map(result, key)


def show_heard(result: Classification, key: str) -> None:
    """The song's log-mel spectrogram, its windows' winners and (musicnn models) the taggram."""
    st.markdown("##### What the model heard")
    if result.song is None:
        st.caption("This result does not carry its audio, so its spectrogram cannot be drawn.")
        return
    musicnn = has_musicnn_front_end(classifier.model)
    with st.spinner("Drawing the spectrogram" + (" and musicnn's tags…" if musicnn else "…")):
        mel = state.log_mel(result.song)
        tags = None
        if musicnn:
            try:
                tags = state.taggram(result)
            except Exception as error:  # the bars and the spectrogram stand without it
                log.exception("musicnn's taggram")
                st.caption(f"musicnn's tags could not be computed: {error}")
    st.caption(
        f"The song's log-mel spectrogram; dotted lines are the {WINDOW_SECONDS} s windows the model classified, and "
        f"the strip "
        "beneath gives each window's winning genre (a last window that overlaps the one before it has its own lane)."
        + (
            f" Below it, the {len(tags.tags)} tags (of musicnn's 50, learnt from the Million Song Dataset's "
            f"listeners) that "
            "musicnn, this model's pretrained front end, found strongest on average, window by window (darker: more "
            "likely)."
            if tags is not None
            else ""
        )
    )
    windows = segments(result.genres, result.probabilities, result.starts, result.seconds)
    # The player below the figure starts where the chosen window starts; the figure marks it, so
    # what is heard and what the model said about it line up on one time axis.
    starts = [float(s.start) for s in windows]
    start = starts[0]
    if len(starts) > 1:  # a slider needs two stops
        start = st.select_slider(
            "Listen from window",
            options=starts,
            format_func=lambda t: f"{clock(t)} · {windows[starts.index(t)].genre}",
            key=f"{key}_playhead",
        )
    start = int(start)  # the player starts on whole seconds
    st.plotly_chart(heard_figure(result.genres, mel, windows, result.seconds, tags, playhead=start), key=f"{key}_heard")
    st.audio(result.song, sample_rate=SAMPLE_RATE, start_time=start)
    st.caption(f"The player starts at {clock(start)}, the blue line, and plays on through the later windows.")


def show_on_map(result: Classification, key: str) -> None:
    """The song as a star on the run's song map, with its nearest training songs."""
    from genre.jobs.song_map import SongMapError

    st.markdown("##### Among the run's songs")
    try:
        song_map = state.song_map(run)
    except SongMapError as error:
        st.caption(str(error))
        return
    if song_map is None:
        st.caption(state.no_song_map_text(run))
        return
    if result.embeddings is None:
        st.caption(f"Model `{run.run_id}` has no penultimate layer to place the song by.")
        return
    placed = song_map.place(result.embeddings)
    st.caption(
        "The star is your song on the run's song map (the Song map page explains it). Its nearest training songs, "
        f"by distance over the map's first {len(song_map.explained)} components, which keep "
        f"{song_map.variance_kept:.0%} "
        "of the training songs' spread:"
    )
    st.dataframe(
        [
            {"track": n.track_id, "genre": n.genre, "voted": n.vote, "distance": round(n.distance, 2)}
            for n in placed.nearest
        ],
        hide_index=True,
        key=f"{key}_nearest",
    )
    st.plotly_chart(song_map_figure(song_map, list(result.genres), placed), key=f"{key}_map")


def classify_encoded(data: bytes, name: str, key: str) -> None:
    try:
        result = state.classify_bytes(run, data, name)
    except AudioError as error:
        st.error(f"Cannot classify {error.source}: {error.reason}.")
        return
    except Exception as error:
        log.exception("classifying %s", name)
        st.error(f"Classifying {name} failed: {error}")
        return
    show_result(result, key)


tabs = st.tabs(["Upload a file", "Microphone (live)", "Record a clip"], key="classify_mode", on_change="rerun")

# ----------------------------------------------------------------------------- upload
if tabs[0].open is not False:
    with tabs[0]:
        style.show_upload_errors()
        upload = st.file_uploader(
            f"Audio file (wav, mp3, ogg, flac, au; up to {style.upload_limit_mb()} MB)",
            type=[s.lstrip(".") for s in AUDIO_SUFFIXES],
            key="upload",
        )
        if upload is not None:
            data = upload.getvalue()
            st.audio(data, format=upload.type or "audio/wav")
            if st.button("Classify", type="primary", key="classify_upload"):
                st.session_state["classified_upload"] = upload.file_id
            # The result stays on the page across reruns (cached) until another file comes.
            if st.session_state.get("classified_upload") == upload.file_id:
                classify_encoded(data, upload.name, "upload")

# ----------------------------------------------------------------------------- microphone
if tabs[1].open is not False:
    with tabs[1]:
        st.caption(
            "Press **Start** and play music to the microphone. A bar appears for every 3 s of "
            "audio, and the running vote updates while you record. Echo cancellation, noise "
            "suppression and automatic gain are switched off so the music reaches the model as is."
        )
        live = state.live_audio()
        # Windows are classified on the live worker's thread as they complete; the panel below
        # only draws the tally, so a slow page refresh never holds a window back.
        state.follow_live(classifier)
        # The sink's callback runs on aiortc's thread and only appends to the buffer; every
        # frame reaches it (the frame-callback path would drop frames when several queue up).
        sink = webrtc.create_audio_sink_track(callback=live.append, key=f"{MIC_KEY}-sink")
        context = webrtc.webrtc_streamer(
            key=MIC_KEY,
            mode=webrtc.WebRtcMode.SENDONLY,
            rtc_configuration=RTC_CONFIGURATION,
            media_stream_constraints=MIC_CONSTRAINTS,
            sink_audio_track=sink,
            on_change=partial(state.on_mic_change, MIC_KEY),
        )
        playing = bool(context.state.playing)

        @st.fragment(run_every=REFRESH_SECONDS if playing else None)
        def live_panel() -> None:
            tally = state.live_results()
            probabilities, starts = tally.snapshot(len(classifier.genres))
            count = len(starts)
            if tally.error:
                st.error(f"Classifying the live audio failed: {tally.error}")
            if playing:
                due = WINDOW_SECONDS - (live.seconds % WINDOW_SECONDS)
                st.markdown(
                    f":red[●] **Listening**: {live.seconds:.1f} s received, {count} window{'s' if count != 1 else ''} "
                    f"classified; the next bar in {due:.1f} s."
                    if live.frames
                    else ":orange[●] Connected; waiting for audio…"
                )
            if count:
                summary = classifier.summarise(probabilities, starts, live.seconds)
                won = int(summary.votes[summary.genres.index(summary.vote_genre)])
                st.markdown(
                    f"Running vote: **{summary.vote_genre}** ({won} of {count} windows: "
                    f"{vote_text(summary.genres, summary.votes, summary.vote_genre)})"
                )
            elif playing:
                st.markdown("Running vote: the first bar appears once 3 s of audio have arrived.")
            else:
                return
            # Drawn empty from the start, so the chart library is loaded before the first bar.
            # Built again only when a bar comes: the panel refreshes twice a second.
            drawn = (probabilities.tobytes(), starts.tobytes())
            cached = st.session_state.get("live_figure")
            if cached is None or cached[0] != drawn:
                cached = (drawn, window_figure(classifier.genres, probabilities, starts, min_seconds=30))
                st.session_state["live_figure"] = cached
            st.plotly_chart(cached[1], key="live_windows")
            tally.mark_shown(count)
            if count:
                st.caption(
                    f"{count} window{'s' if count != 1 else ''} · each bar appeared about "
                    f"{tally.median_shown_lag:.1f} s after its last sound reached the server "
                    "(classifying it and refreshing the page)."
                )

        live_panel()

        take_seconds = live.seconds
        if not playing and take_seconds > 0:
            st.markdown(f"##### The whole take: {clock(take_seconds)}")
            take = live.take()
            st.audio(take, sample_rate=SAMPLE_RATE)
            if live.dropped_windows:
                st.caption(
                    f"{live.dropped_windows} windows were recorded faster than they could be shown and were skipped "
                    f"live."
                )
            if st.button("Classify the whole take", key="classify_take"):
                st.session_state["take_classified"] = True
            if st.session_state.get("take_classified"):
                try:
                    result = state.classify_samples(run, check_take(take))
                except AudioError as error:
                    st.error(f"Cannot classify {error.source}: {error.reason}.")
                except Exception as error:
                    log.exception("classifying the take")
                    st.error(f"Classifying the recording failed: {error}")
                else:
                    show_result(result, "take")

# ----------------------------------------------------------------------------- recorded clip
if tabs[2].open is not False:
    with tabs[2]:
        clip = st.audio_input(
            "Record a clip, then stop to classify it",
            sample_rate=SAMPLE_RATE,  # the model's rate; the default 16 kHz drops the top half of the music
            key="clip",
        )
        if clip is not None:
            classify_encoded(clip.getvalue(), "the recording", "clip")
