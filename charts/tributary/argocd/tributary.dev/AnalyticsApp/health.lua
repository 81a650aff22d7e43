-- Argo CD health check for tributary.dev/v1alpha1 AnalyticsApp (kstatus conditions).
-- Suspended: the pause annotation is set (Ready=Unknown, reason Paused).
-- Degraded: QueryValid=False (the SQL does not compile; the message has the position) or
-- Stalled=True (the operator cannot make progress until the spec changes).
-- Progressing: the current generation is not observed yet (checked before Stalled, so a
-- fixed spec is not reported Degraded from the previous generation), or Ready is not True.
-- Healthy: Ready=True for the current generation.
local hs = { status = "Progressing", message = "Waiting for the operator to reconcile" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local found = {}
for _, c in ipairs(obj.status.conditions) do
  found[c.type] = c
end
local function text(c)
  return (c.reason or "") .. ": " .. (c.message or "")
end
local ready = found["Ready"]
local stalled = found["Stalled"]
if ready ~= nil and ready.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = ready.message or ""
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for generation " .. generation .. " to be observed"
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = hs.message .. " (" .. text(ready) .. ")"
  end
  return hs
end
local query = found["QueryValid"]
if query ~= nil and query.status == "False" then
  hs.status = "Degraded"
  hs.message = "QueryValid " .. text(query)
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
if ready ~= nil then
  hs.message = text(ready)
end
return hs
