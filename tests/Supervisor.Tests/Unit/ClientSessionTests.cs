using System.Text;
using Supervisor.Proxy.Http2;
using Supervisor.Tests.Infrastructure;
using static Supervisor.Proxy.Http2.Http2Frame;
using FrameType = Supervisor.Proxy.Http2.Http2Frame.Type;

namespace Supervisor.Tests.Unit;

/// <summary>
/// The front's HTTP/2 client against a worker that breaks the protocol, case by case (RFC 9113): each
/// fault ends what the RFC scopes it to — its stream alone (RST_STREAM, that request's 502) or, only when
/// the connection itself is spoiled, the connection (GOAWAY) — and every other stream goes on.
/// </summary>
public sealed class ClientSessionTests
{
    private static readonly byte[] Hello = Encoding.ASCII.GetBytes("hello");

    [Fact]
    public void A_response_with_a_body_and_trailers_arrives_whole()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();

        harness.Receive(
            Frames.Headers(1, Frames.Head(200, ("content-length", "5"), ("x-a", "1"))),
            Frames.Data(1, Hello),
            Frames.Headers(1, new HpackWriter().Literal("grpc-status", "0").ToArray(), endStream: true));

        Assert.Equal(ResponseState.Completed, stream.State);
        Assert.True(stream.HeadArrived.IsCompletedSuccessfully);
        Assert.Equal(200, stream.Status);
        Assert.Equal([new("content-length", "5"), new("x-a", "1")], stream.Headers);
        Assert.Equal(Hello, SessionHarness.ReadBody(stream));
        Assert.Equal([new("grpc-status", "0")], stream.Trailers);
        Assert.Equal(0, harness.Session.ActiveStreams);
    }

    [Fact]
    public void Informational_heads_are_passed_over_and_the_final_one_taken()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();

        harness.Receive(Frames.Headers(1, Frames.Head(103, ("link", "</a.css>; rel=preload"))), Frames.Headers(1, Frames.Head(204), endStream: true));

        Assert.Equal(ResponseState.Completed, stream.State);
        Assert.Equal(204, stream.Status);
        Assert.Empty(stream.Headers);
    }

    public static TheoryData<string, byte[][], string> MalformedResponses => new()
    {
        { "a 1xx head that ends the stream", [Frames.Headers(1, Frames.Head(100), endStream: true)], "a 100 head that ends the stream" },
        { "a 101 head", [Frames.Headers(1, Frames.Head(101))], "101" },
        { "DATA before HEADERS", [Frames.Data(1, Hello, endStream: true)], "DATA before the response's headers" },
        { "a second head without END_STREAM", [Frames.Headers(1, Frames.Head(200)), Frames.Headers(1, Frames.Head(200))], "a second header block that does not end the stream" },
        { "more DATA than its content-length", [Frames.Headers(1, Frames.Head(200, ("content-length", "2"))), Frames.Data(1, Hello)], "more body than its content-length" },
        { "less DATA than its content-length", [Frames.Headers(1, Frames.Head(200, ("content-length", "9"))), Frames.Data(1, Hello, endStream: true)], "where its content-length says 9" },
        { "a body on a 204", [Frames.Headers(1, Frames.Head(204)), Frames.Data(1, Hello, endStream: true)], "a body in a response that has none" },
        { "two content-lengths that differ", [Frames.Headers(1, Frames.Head(200, ("content-length", "5"), ("content-length", "6")))], "content-length '6'" },
        { "an uppercase field name", [Frames.Headers(1, Frames.Head(200, ("X-Upper", "1")))], "field name 'X-Upper'" },
        { "a connection-specific field", [Frames.Headers(1, Frames.Head(200, ("transfer-encoding", "chunked")))], "connection-specific field 'transfer-encoding'" },
        { "a line break in a value", [Frames.Headers(1, Frames.Head(200, ("x-a", "a\r\nx-b: b")))], "control character (0x0d)" },
        { "a value with a space at its end", [Frames.Headers(1, Frames.Head(200, ("x-a", "a ")))], "whitespace at an end" },
        { "a pseudo-header after a field", [Frames.Headers(1, new HpackWriter().Literal("x-a", "1").Status(200).ToArray())], "pseudo-header :status after a regular field" },
        { "a request pseudo-header", [Frames.Headers(1, new HpackWriter().Status(200).Indexed(4).ToArray())], "pseudo-header :path in a response" },
        { "no :status", [Frames.Headers(1, Frames.Head(200)[1..])], "without :status" },
        { "a :status of two digits", [Frames.Headers(1, new HpackWriter().LiteralIndexedName(8, "20").ToArray())], ":status '20'" },
        { "a pseudo-header in trailers", [Frames.Headers(1, Frames.Head(200)), Frames.Headers(1, Frames.Head(200), endStream: true)], "pseudo-header :status in trailers" },
    };

    [Theory]
    [MemberData(nameof(MalformedResponses))]
    public void A_malformed_response_fails_its_own_stream_with_a_reset_and_leaves_the_others_alone(string what, byte[][] frames, string reason)
    {
        var harness = new SessionHarness();
        var victim = harness.Open();
        var bystander = harness.Open();

        harness.Receive(frames);
        harness.Receive(Frames.Headers(3, Frames.Head(200, ("content-length", "5"))), Frames.Data(3, Hello, endStream: true));

        Assert.Equal(ResponseState.Failed, victim.State);
        Assert.Contains(reason, victim.Failure!.Message, StringComparison.Ordinal);
        Assert.Contains(harness.Sent(), frame => frame.Type == FrameType.RstStream && frame.StreamId == 1 && frame.Payload.SequenceEqual(Frames.Int32(ErrorCode.ProtocolError)));
        Assert.Equal(ResponseState.Completed, bystander.State);
        Assert.Equal(Hello, SessionHarness.ReadBody(bystander));
        _ = what;
    }

    [Fact]
    public void A_huffman_coded_head_is_decoded()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();

        harness.Receive(Frames.Headers(1, new HpackWriter().LiteralIndexedName(8, "200", huffman: true).Literal("x-name", "café ünïcode", index: true, huffman: true).ToArray(), endStream: true));

        Assert.Equal(200, stream.Status);
        Assert.Equal([new("x-name", "café ünïcode")], stream.Headers);
    }

    [Fact]
    public void A_head_in_several_frames_is_one_block_and_nothing_may_come_between_them()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();
        var block = Frames.Head(200, ("x-a", new string('a', 100)), ("x-b", "b"));

        harness.Receive(Frames.Headers(1, block[..30], endHeaders: false), Frames.Continuation(1, block[30..60], endHeaders: false), Frames.Continuation(1, block[60..], endHeaders: true));
        Assert.Equal(2, stream.Headers.Count);

        var interleaved = new SessionHarness();
        interleaved.Open();
        interleaved.Open();
        var error = interleaved.ReceiveConnectionError(Frames.Headers(1, block[..30], endHeaders: false), Frames.Data(3, Hello));
        Assert.Equal(ErrorCode.ProtocolError, error.ErrorCode);
        Assert.Contains("inside the header block of stream 1", error.Message, StringComparison.Ordinal);

        var orphan = new SessionHarness();
        orphan.Open();
        Assert.Equal(ErrorCode.ProtocolError, orphan.ReceiveConnectionError(Frames.Continuation(1, block)).ErrorCode);
    }

    [Fact]
    public void A_size_update_inside_a_block_spoils_the_connection_with_compression_error()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();

        var error = Assert.Throws<HpackException>(() => harness.Session.Receive(Frames.Headers(1, new HpackWriter().Status(200).SizeUpdate(0).ToArray())));

        Assert.Contains("after the first field", error.Message, StringComparison.Ordinal);
        _ = stream;
    }

    [Fact]
    public void A_head_above_the_list_limit_fails_its_stream_and_the_table_stays_in_step_for_the_next()
    {
        var harness = new SessionHarness();
        var large = harness.Open();
        var next = harness.Open();
        var block = new HpackWriter().Status(200).Literal("x-kept", "in the table", index: true);
        for (var i = 0; i < 2; i++)
        {
            block.Literal($"x-fill-{i}", new string('f', ClientSession.MaxResponseHeaderListSize / 2));
        }
        var octets = block.ToArray();
        var frames = new List<byte[]> { Frames.Headers(1, octets[..DefaultMaxPayload], endHeaders: false) };
        for (var at = DefaultMaxPayload; at < octets.Length; at += DefaultMaxPayload)
        {
            frames.Add(Frames.Continuation(1, octets[at..Math.Min(at + DefaultMaxPayload, octets.Length)], endHeaders: at + DefaultMaxPayload >= octets.Length));
        }

        harness.Receive([.. frames]);
        harness.Receive(Frames.Headers(3, new HpackWriter().Status(200).Indexed(62).ToArray(), endStream: true));

        Assert.Equal(ResponseState.Failed, large.State);
        Assert.Contains($"larger than {ClientSession.MaxResponseHeaderListSize}", large.Failure!.Message, StringComparison.Ordinal);
        Assert.Equal([new("x-kept", "in the table")], next.Headers);
    }

    [Fact]
    public void Data_beyond_a_streams_window_fails_that_stream_and_the_connection_still_counts_it()
    {
        var harness = new SessionHarness();
        var greedy = harness.Open();
        var bystander = harness.Open();
        harness.Receive(Frames.Headers(1, Frames.Head(200)), Frames.Headers(3, Frames.Head(200)));
        var chunk = new byte[DefaultMaxPayload];

        // 16 KB is the window a stream starts with: one frame fills it, a second is one too many.
        harness.Receive(Frames.Data(1, chunk), Frames.Data(1, chunk));
        harness.Receive(Frames.Data(3, Hello, endStream: true));

        Assert.Equal(ResponseState.Failed, greedy.State);
        Assert.Contains("beyond the stream's window", greedy.Failure!.Message, StringComparison.Ordinal);
        Assert.Contains(harness.Sent(), frame => frame.Type == FrameType.RstStream && frame.StreamId == 1 && frame.Payload.SequenceEqual(Frames.Int32(ErrorCode.FlowControlError)));
        Assert.Equal(Hello, SessionHarness.ReadBody(bystander));
    }

    [Fact]
    public void Padding_is_taken_off_and_its_window_given_back_at_once()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();
        harness.Receive(Frames.Headers(1, Frames.Head(200)));
        harness.Sent();

        harness.Receive(Frames.Data(1, Hello, padding: 20));

        Assert.Contains(harness.Sent(), frame => frame.Type == FrameType.WindowUpdate && frame.StreamId == 1 && frame.Payload.SequenceEqual(Frames.Int32(21)));
        harness.Receive(Frames.Data(1, [], endStream: true));
        Assert.Equal(Hello, SessionHarness.ReadBody(stream));

        var overPadded = new SessionHarness();
        overPadded.Open();
        overPadded.Receive(Frames.Headers(1, Frames.Head(200)));
        Assert.Equal(ErrorCode.ProtocolError, overPadded.ReceiveConnectionError(Frames.Frame(FrameType.Data, Flags.Padded, 1, [5, 1, 2])).ErrorCode);
    }

    [Fact]
    public async Task A_stream_whose_reader_keeps_up_has_its_window_given_back_and_doubled_up_to_the_most()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();
        stream.ClientKeepsUp = true; // The forwarder's word: its client takes all it is given.
        harness.Receive(Frames.Headers(1, Frames.Head(200)));
        harness.Sent();
        var buffer = new byte[ClientSession.MaxStreamWindow];
        var grants = new List<int>();

        for (var window = ClientSession.InitialStreamWindow; grants.Count < 6; window = grants[^1])
        {
            // The worker fills the window; the forwarder reads it all (its client keeps up).
            harness.Receive([.. Enumerable.Range(0, window / DefaultMaxPayload).Select(_ => Frames.Data(1, new byte[DefaultMaxPayload]))]);
            Assert.Equal(window, await stream.ReadAsync(buffer, CancellationToken.None));
            grants.Add(harness.Sent().Where(frame => frame.Type == FrameType.WindowUpdate && frame.StreamId == 1).Sum(frame => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(frame.Payload)));
        }

        Assert.Equal([32 * 1024, 64 * 1024, 128 * 1024, 256 * 1024, 256 * 1024, 256 * 1024], grants);
    }

    [Fact]
    public async Task A_stream_whose_client_is_not_known_to_keep_up_keeps_its_first_window()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();
        harness.Receive(Frames.Headers(1, Frames.Head(200)), Frames.Data(1, new byte[ClientSession.InitialStreamWindow]));
        harness.Sent();

        Assert.Equal(ClientSession.InitialStreamWindow, await stream.ReadAsync(new byte[ClientSession.MaxStreamWindow], CancellationToken.None));

        var grant = harness.Sent().Single(frame => frame.Type == FrameType.WindowUpdate && frame.StreamId == 1);
        Assert.Equal(ClientSession.InitialStreamWindow, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(grant.Payload));
    }

    [Fact]
    public void A_stream_whose_reader_stalls_holds_no_more_than_its_first_window()
    {
        var harness = new SessionHarness();
        var stalled = harness.Open();
        harness.Receive(Frames.Headers(1, Frames.Head(200)), Frames.Data(1, new byte[ClientSession.InitialStreamWindow]));

        Assert.DoesNotContain(harness.Sent(), frame => frame.Type == FrameType.WindowUpdate && frame.StreamId == 1);
        harness.Receive(Frames.Data(1, new byte[1]));
        Assert.Equal(ResponseState.Failed, stalled.State); // The worker may send no more until the reader reads.
    }

    [Fact]
    public void Settings_of_every_kind_mid_connection_are_applied_and_acknowledged()
    {
        var harness = new SessionHarness();
        harness.Open();

        harness.Receive(Frames.Settings(
            (Setting.HeaderTableSize, 0), (Setting.EnablePush, 0), (Setting.MaxConcurrentStreams, 2), (Setting.InitialWindowSize, 1_000_000),
            (Setting.MaxFrameSize, 20_000), (Setting.MaxHeaderListSize, 8192), (0x42, 7)));

        Assert.Contains(harness.Sent(), frame => frame.Type == FrameType.Settings && frame.Flags == Flags.Ack);
        Assert.Equal(8192, harness.Session.PeerMaxHeaderListSize);
        harness.Open(block: [.. SessionHarness.RequestBlock, .. new HpackWriter().Literal("x-big", new string('b', 18_000)).ToArray()]);
        Assert.False(harness.Session.CanOpenStream); // Two open: the worker's new limit.
        var headers = harness.Sent().Single(frame => frame.Type == FrameType.Headers);
        Assert.Equal(Flags.EndStream | Flags.EndHeaders, headers.Flags); // 18 KB in one frame, as the new SETTINGS_MAX_FRAME_SIZE allows.

        harness.Receive(Frames.Settings((Setting.MaxConcurrentStreams, uint.MaxValue)));
        Assert.True(harness.Session.CanOpenStream); // Read as unsigned: 2^32-1 is "no limit", not -1.
    }

    public static TheoryData<string, byte[], int> BrokenSettings => new()
    {
        { "push enabled by a server", Frames.Settings((Setting.EnablePush, 1)), ErrorCode.ProtocolError },
        { "a frame size below 2^14", Frames.Settings((Setting.MaxFrameSize, 100)), ErrorCode.ProtocolError },
        { "a frame size above 2^24-1", Frames.Settings((Setting.MaxFrameSize, 1 << 24)), ErrorCode.ProtocolError },
        { "a window above 2^31-1", Frames.Settings((Setting.InitialWindowSize, 1u << 31)), ErrorCode.FlowControlError },
        { "a length that is no multiple of 6", Frames.Frame(FrameType.Settings, 0, 0, [0, 3, 0, 0, 0]), ErrorCode.FrameSizeError },
        { "SETTINGS on a stream", Frames.Frame(FrameType.Settings, 0, 1, []), ErrorCode.ProtocolError },
        { "an acknowledgement with a payload", Frames.Frame(FrameType.Settings, Flags.Ack, 0, [0, 3, 0, 0, 0, 1]), ErrorCode.FrameSizeError },
    };

    [Theory]
    [MemberData(nameof(BrokenSettings))]
    public void Broken_settings_spoil_the_connection_with_the_rfcs_error_code(string what, byte[] frame, int errorCode)
    {
        var harness = new SessionHarness();
        harness.Open();

        Assert.Equal(errorCode, harness.ReceiveConnectionError(frame).ErrorCode);
        _ = what;
    }

    [Fact]
    public void A_ping_is_answered_with_its_payload_and_a_ping_of_the_wrong_length_spoils_the_connection()
    {
        var harness = new SessionHarness();
        byte[] opaque = [1, 2, 3, 4, 5, 6, 7, 8];

        harness.Receive(Frames.Ping(opaque), Frames.Ping(opaque, ack: true));

        Assert.Equal([(FrameType.Ping, Flags.Ack, 0)], harness.Sent().Select(frame => (frame.Type, frame.Flags, frame.StreamId)));
        Assert.Equal(ErrorCode.FrameSizeError, new SessionHarness().ReceiveConnectionError(Frames.Ping(opaque.AsSpan(0, 7))).ErrorCode);
        Assert.Equal(ErrorCode.ProtocolError, new SessionHarness().ReceiveConnectionError(Frames.Frame(FrameType.Ping, 0, 1, opaque)).ErrorCode);
    }

    [Fact]
    public void Goaway_lets_the_streams_at_or_below_its_last_id_finish_and_fails_the_others_as_never_sent()
    {
        var harness = new SessionHarness();
        var streams = Enumerable.Range(0, 4).Select(_ => harness.Open()).ToArray(); // 1, 3, 5, 7

        harness.Receive(Frames.GoAway(3, ErrorCode.NoError));
        harness.Receive(Frames.Headers(1, Frames.Head(200), endStream: true), Frames.Headers(3, Frames.Head(200), endStream: true));

        Assert.All(streams[..2], stream => Assert.Equal(ResponseState.Completed, stream.State));
        Assert.All(streams[2..], stream => Assert.IsType<RequestNotSentException>(stream.Failure));
        Assert.False(harness.Session.CanOpenStream);
        Assert.True(harness.Session.Exhausted);
    }

    [Fact]
    public async Task A_reset_mid_body_fails_that_stream_and_a_refused_stream_fails_as_never_sent()
    {
        var harness = new SessionHarness();
        var cut = harness.Open();
        var refused = harness.Open();
        var bystander = harness.Open();

        harness.Receive(Frames.Headers(1, Frames.Head(200)), Frames.Data(1, Hello), Frames.RstStream(1, ErrorCode.InternalError), Frames.RstStream(3, ErrorCode.RefusedStream));
        harness.Receive(Frames.Headers(5, Frames.Head(200), endStream: true));

        var buffer = new byte[100];
        Assert.Equal(5, await cut.ReadAsync(buffer, CancellationToken.None));
        Assert.Contains("INTERNAL_ERROR", (await Assert.ThrowsAsync<IOException>(() => cut.ReadAsync(buffer, CancellationToken.None).AsTask())).Message, StringComparison.Ordinal);
        Assert.IsType<RequestNotSentException>(refused.Failure);
        Assert.Equal(ResponseState.Completed, bystander.State);
        var shortReset = new SessionHarness();
        shortReset.Open();
        Assert.Equal(ErrorCode.FrameSizeError, shortReset.ReceiveConnectionError(Frames.Frame(FrameType.RstStream, 0, 1, [0, 0, 0])).ErrorCode);
    }

    public static TheoryData<string, byte[]> FramesOnStreamsNeverOpened => new()
    {
        { "DATA on stream 0", Frames.Data(0, Hello) },
        { "HEADERS on stream 0", Frames.Headers(0, Frames.Head(200)) },
        { "HEADERS on an idle stream", Frames.Headers(9, Frames.Head(200)) },
        { "HEADERS on a server's stream", Frames.Headers(2, Frames.Head(200)) },
        { "RST_STREAM on an idle stream", Frames.RstStream(9, ErrorCode.Cancel) },
        { "WINDOW_UPDATE on an idle stream", Frames.WindowUpdate(9, 1) },
        { "PUSH_PROMISE", Frames.Frame(FrameType.PushPromise, Flags.EndHeaders, 1, [0, 0, 0, 2, 0x82]) },
        { "a frame above 16 KB", Frames.Data(1, new byte[DefaultMaxPayload + 1]) },
        { "a WINDOW_UPDATE of 0 for the connection", Frames.WindowUpdate(0, 0) },
        { "the connection's window above 2^31-1", Frames.WindowUpdate(0, int.MaxValue) },
    };

    [Theory]
    [MemberData(nameof(FramesOnStreamsNeverOpened))]
    public void Frames_that_break_the_connections_own_rules_spoil_it(string what, byte[] frame)
    {
        var harness = new SessionHarness();
        var open = harness.Open();

        var error = harness.ReceiveConnectionError(frame);

        Assert.NotEqual(ErrorCode.NoError, error.ErrorCode);
        Assert.Equal(ResponseState.Failed, open.State);
        _ = what;
    }

    [Fact]
    public void The_servers_first_frame_must_be_its_settings()
    {
        var harness = new SessionHarness(answerPreface: false);
        harness.Open();

        Assert.Contains("before its SETTINGS", harness.ReceiveConnectionError(Frames.Ping(new byte[8])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_frames_and_priority_signals_are_ignored()
    {
        var harness = new SessionHarness();
        var stream = harness.Open();

        harness.Receive(Frames.Frame(0xfa, 0xff, 1, [1, 2, 3]), Frames.Frame(FrameType.Priority, 0, 1, [0, 0, 0, 0, 16]), Frames.Headers(1, Frames.Head(200), endStream: true));

        Assert.Equal(ResponseState.Completed, stream.State);
    }

    [Fact]
    public void A_window_update_of_zero_or_past_2_31_fails_only_its_stream()
    {
        var harness = new SessionHarness();
        var zero = harness.Open();
        var overflow = harness.Open();
        var bystander = harness.Open();

        harness.Receive(Frames.WindowUpdate(1, 0), Frames.WindowUpdate(3, int.MaxValue), Frames.Headers(5, Frames.Head(200), endStream: true));

        Assert.Contains("WINDOW_UPDATE of 0", zero.Failure!.Message, StringComparison.Ordinal);
        Assert.Contains("above 2^31-1", overflow.Failure!.Message, StringComparison.Ordinal);
        Assert.Equal(ResponseState.Completed, bystander.State);
    }

    [Fact]
    public void Frames_for_a_stream_this_side_reset_are_dropped_but_their_headers_still_decoded()
    {
        var harness = new SessionHarness();
        var canceled = harness.Open();
        var next = harness.Open();
        canceled.Cancel(CancellationToken.None);
        Assert.Contains(harness.Sent(), frame => frame.Type == FrameType.RstStream && frame.StreamId == 1 && frame.Payload.SequenceEqual(Frames.Int32(ErrorCode.Cancel)));

        // The worker answers before it sees the reset; its block indexes a field the next block uses.
        harness.Receive(Frames.Headers(1, new HpackWriter().Status(200).Literal("x-shared", "yes", index: true).ToArray()), Frames.Data(1, Hello, endStream: true));
        harness.Receive(Frames.Headers(3, new HpackWriter().Status(200).Indexed(62).ToArray(), endStream: true));

        Assert.IsAssignableFrom<OperationCanceledException>(canceled.Failure);
        Assert.Equal([new("x-shared", "yes")], next.Headers);
    }

    [Fact]
    public void A_lost_connection_tells_each_stream_how_far_its_request_got()
    {
        var harness = new SessionHarness();
        var answered = harness.Open();
        var unanswered = harness.Open();
        harness.Sent(); // Both requests handed to the socket.
        var unsent = harness.Open(); // Still in the output buffer.
        harness.Receive(Frames.Headers(1, Frames.Head(200)));

        harness.Session.FailAll(new HttpRequestException("worker w-test closed its connection"));

        Assert.IsType<HttpRequestException>(answered.Failure);
        Assert.IsType<NoResponseException>(unanswered.Failure);
        Assert.IsType<RequestNotSentException>(unsent.Failure);
    }
}
