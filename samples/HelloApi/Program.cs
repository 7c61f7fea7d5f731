var builder = WebApplication.CreateBuilder(args);
var app = builder.Build();

app.MapGet("/", () => "Hello World!");
app.MapGet("/whoami", (HttpContext context) => new
{
    pid = Environment.ProcessId,
    remoteAddress = context.Connection.RemoteIpAddress?.ToString(),
    host = context.Request.Host.Value,
    scheme = context.Request.Scheme,
});

app.Run();
