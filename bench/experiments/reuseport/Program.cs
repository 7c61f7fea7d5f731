// Experiment, not product: samples/HelloApi's "/" with the one change SO_REUSEPORT needs, so that
// several copies of the app can each bind their own socket to one port and the kernel hashes each new
// connection to one of them. Each copy counts the requests it served and prints the count at its stop.
// Usage: reuseport-app PORT [reuseport]
using System.Net.Sockets;

var port = int.Parse(args[0]);
var reusePort = args.Length > 1 && args[1] == "reuseport";
long served = 0;

var builder = WebApplication.CreateBuilder();
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning); // HelloApi's appsettings.json
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
if (reusePort)
{
    builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket = endpoint =>
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        const int SolSocket = 1, SoReusePort = 15; // Linux
        socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
        socket.Bind(endpoint);
        return socket;
    });
}

var app = builder.Build();
app.Use((context, next) =>
{
    Interlocked.Increment(ref served);
    return next(context);
});
app.MapGet("/", () => "Hello World!");
app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine("started"));
app.Lifetime.ApplicationStopped.Register(() => Console.WriteLine($"served {Interlocked.Read(ref served)}"));
app.Run();
